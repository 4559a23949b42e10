"""The local stack itself: both Kafka clients, log compaction, S3 through s3fs, DuckDB over S3."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from runstream.core.filesystem import open_store
from runstream.core.settings import Settings

pytestmark = pytest.mark.integration
KAFKA = os.environ.get("RUNSTREAM_TEST_KAFKA", "127.0.0.1:9092")


def _create_topic(name: str, partitions: int = 1, config: dict[str, str] | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": KAFKA})
    futures = admin.create_topics([NewTopic(name, partitions, 1, config=config or {})])
    futures[name].result(30)


def _produce(topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": KAFKA, "acks": "all", "enable.idempotence": True})
    for key, value in messages:
        producer.produce(topic, value, key=key)
        producer.poll(0)
    assert producer.flush(30) == 0


def _consume_all(topic: str, expected: int, timeout: float = 30.0) -> list[tuple[bytes, bytes]]:
    consumer = Consumer(
        {
            "bootstrap.servers": KAFKA,
            "group.id": f"g-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    got: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < expected and time.monotonic() < deadline:
            for message in consumer.consume(1000, 1.0):
                assert message.error() is None, message.error()
                got.append((message.key(), message.value()))
    finally:
        consumer.close()
    return got


def test_confluent_kafka_round_trip(unique: str) -> None:
    topic = f"{unique}.roundtrip"
    _create_topic(topic, partitions=3)
    sent = [(f"k{i % 7}".encode(), f"v{i}".encode()) for i in range(500)]
    _produce(topic, sent)
    assert sorted(_consume_all(topic, len(sent))) == sorted(sent)


def test_aiokafka_reads_what_confluent_kafka_wrote(unique: str) -> None:
    from aiokafka import AIOKafkaConsumer

    topic = f"{unique}.aio"
    _create_topic(topic, partitions=2)
    sent = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(200)]
    _produce(topic, sent)

    async def consume() -> list[tuple[bytes, bytes]]:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=KAFKA, group_id=f"g-{unique}", auto_offset_reset="earliest"
        )
        await consumer.start()
        got: list[tuple[bytes, bytes]] = []
        try:
            async with asyncio.timeout(30):
                while len(got) < len(sent):
                    batches = await consumer.getmany(timeout_ms=1000)
                    for messages in batches.values():
                        got.extend((m.key, m.value) for m in messages)
            await consumer.commit()
        finally:
            await consumer.stop()
        return got

    assert sorted(asyncio.run(consume())) == sorted(sent)


def test_compacted_topic_keeps_the_last_value_per_key(unique: str) -> None:
    topic = f"{unique}.compacted"
    _create_topic(
        topic,
        config={
            "cleanup.policy": "compact",
            "segment.ms": "100",
            "segment.bytes": "1024",
            "min.cleanable.dirty.ratio": "0.01",
            "min.compaction.lag.ms": "0",
            "delete.retention.ms": "100",
        },
    )
    keys = [f"run-{i}".encode() for i in range(5)]
    rounds = 20
    for round_ in range(rounds):
        _produce(topic, [(key, f"{key.decode()}@{round_}".encode()) for key in keys])
        time.sleep(0.05)
    total = rounds * len(keys)
    deadline = time.monotonic() + 60
    records = _consume_all(topic, total, timeout=5)
    while len(records) >= total and time.monotonic() < deadline:
        _produce(topic, [(b"filler", b"x")])  # rolls the active segment so it can be cleaned
        time.sleep(1)
        records = _consume_all(topic, total, timeout=5)
    assert len(records) < total, "the log cleaner never compacted the topic"
    latest = {key: value for key, value in records}
    for key in keys:
        assert latest[key] == f"{key.decode()}@{rounds - 1}".encode()


def test_s3_write_list_read(s3_settings: Settings) -> None:
    fs, root = open_store(s3_settings)
    fs.pipe(f"{root}/a/one.txt", b"first")
    fs.pipe(f"{root}/a/two.txt", b"second")
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"{root}/a")) == ["one.txt", "two.txt"]
    assert fs.cat(f"{root}/a/two.txt") == b"second"


def test_duckdb_reads_parquet_on_s3_through_s3fs(s3_settings: Settings) -> None:
    fs, root = open_store(s3_settings)
    table = pa.table({"step": list(range(1000)), "value": [i * 0.5 for i in range(1000)]})
    with fs.open(f"{root}/p/data.parquet", "wb") as handle:
        pq.write_table(table, handle)
    connection = duckdb.connect()
    try:
        connection.register_filesystem(fs)
        count, total = connection.execute(
            f"SELECT count(*), sum(value) FROM read_parquet('s3://{root}/p/*.parquet')"
        ).fetchone()  # type: ignore[misc]
        extensions = connection.execute(
            "SELECT extension_name FROM duckdb_extensions() WHERE loaded AND extension_name = 'httpfs'"
        ).fetchall()
    finally:
        connection.close()
    assert (count, total) == (1000, sum(i * 0.5 for i in range(1000)))
    assert extensions == [], "DuckDB must read S3 through s3fs, not the httpfs extension"
