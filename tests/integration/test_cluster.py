"""deploy/stack --brokers 3: a KRaft cluster on loopback where Runstream's own topic setup
replicates its topics 3 times with min.insync.replicas=2, and acks=all writes go on while the
broker that leads most partitions is SIGKILLed, and it comes back in sync."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from runstream.core.kafka_admin import cluster_replication, ensure_topics
from runstream.core.settings import Settings
from runstream.core.topics import replication_for

from .conftest import Cluster, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MESSAGES = 3000


def test_topics_replicated_3_survive_a_broker_sigkill(cluster: Cluster) -> None:
    prefix = f"c{uuid.uuid4().hex[:10]}"
    settings = Settings.resolve(f"kafka://{cluster.bootstrap}", topic_prefix=prefix, environ={})
    assert cluster_replication(settings) == replication_for(3)
    topics = ensure_topics(settings)

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    names = (topics.events, topics.runs, topics.dead_letters)
    # a new topic reaches every broker's metadata a moment after its creation returns
    wait_for(
        lambda: all(cluster.fully_replicated(name) for name in names), 60, "the topics in sync"
    )
    meta = admin.list_topics(timeout=20)
    for name in names:
        partitions = meta.topics[name].partitions.values()
        assert len(partitions) == 12
        assert all(len(p.replicas) == 3 and len(p.isrs) == 3 for p in partitions), name
    resources = [ConfigResource(ResourceType.TOPIC, topics.events)]
    min_insync: list[str] = []

    def described() -> bool:
        # the broker asked may not know the new topic yet (UNKNOWN_TOPIC_OR_PART): ask again
        try:
            configs = admin.describe_configs(resources)[resources[0]].result(20)
        except KafkaException:
            return False
        min_insync.append(configs["min.insync.replicas"].value)
        return True

    wait_for(described, 30, "the events topic's config")
    assert min_insync[-1] == "2"

    leaders = cluster.leaders(topics.events)
    victim = max(leaders, key=lambda node: leaders[node])
    failures: list[KafkaError] = []
    producer = Producer(
        {"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True}
    )

    def delivered(error: KafkaError | None, _message: object) -> None:
        if error is not None:
            failures.append(error)

    def produce(start: int, stop: int) -> None:
        for i in range(start, stop):
            producer.produce(
                topics.events, b"%d" % i, key=b"run%d" % (i % 50), on_delivery=delivered
            )
            producer.poll(0)

    produce(0, MESSAGES // 2)
    assert producer.flush(60) == 0
    cluster.kill(victim)
    killed_at = time.monotonic()
    produce(MESSAGES // 2, MESSAGES)
    assert producer.flush(90) == 0, "acks=all writes stalled with one broker of 3 down"
    assert failures == []
    after_kill = time.monotonic() - killed_at
    assert cluster.stack("status").returncode == 1  # one broker is down, and status says so
    assert cluster.leaders(topics.events)[victim] == 0

    cluster.up()
    wait_for(lambda: cluster.fully_replicated(topics.events), 120, "the restarted broker in sync")

    consumer = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap,
            "group.id": prefix,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topics.events])
    values: list[bytes] = []
    deadline = time.monotonic() + 60
    while len(values) < MESSAGES and time.monotonic() < deadline:
        values += [m.value() for m in consumer.consume(500, 1.0) if m.error() is None]
    consumer.close()
    assert sorted(int(v) for v in values) == list(range(MESSAGES))
    print(f"broker {victim} killed; second half acknowledged in {after_kill:.1f}s")
