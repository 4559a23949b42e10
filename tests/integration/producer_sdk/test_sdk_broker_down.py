"""Kafka unreachable, stopped mid-run and started again: after flush() every event is in the
topic (spilled batches resent with their identities); spill files left by a process that
gave up are resent by ``resend_spill_files``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from runstream.contract import EventId, MetricLogged
from runstream.core.kafka_admin import ensure_topics
from runstream.core.locallog import log_files
from runstream.core.settings import Settings
from runstream.tracking import Client, FlushError, resend_spill_files

from .conftest import PrivateKafka, free_port, topic_events

FAST_RECONNECT = {"reconnect.backoff.ms": 100, "reconnect.backoff.max.ms": 500}


def _log(client: Client, run_id: str, first: int, count: int) -> None:
    run = client.attach(run_id)
    for step in range(first, first + count):
        run.log_metric("loss", float(step), step)
    run.log_param(f"block{first}", count)


def _assert_all_once(settings: Settings, run_id: str, steps: int) -> None:
    events = topic_events(settings)
    identities = Counter(event.id for _, event in events)
    assert max(identities.values()) == 1, "an event identity arrived twice"
    producer = {event.id.producer for _, event in events}
    assert len(producer) == 1
    (pid,) = producer
    sequences = sorted(event.id.sequence for _, event in events)
    assert sequences == list(range(len(sequences)))  # nothing lost in the middle
    points = [e.payload for _, e in events if isinstance(e.payload, MetricLogged)]
    assert sorted(p.step for p in points) == list(range(steps))
    assert EventId(pid, 0) in identities and len(identities) >= steps
    assert all(p for p in run_id)


@pytest.mark.integration
def test_broker_stopped_mid_run_then_back(private_kafka: PrivateKafka, tmp_path: Path) -> None:
    settings = Settings.resolve(
        f"kafka://{private_kafka.bootstrap}", topic_prefix="down", kafka=FAST_RECONNECT, environ={}
    )
    spill = tmp_path / "spill"
    client = Client(settings=settings, spill_dir=spill, max_in_flight=5_000)
    run_id = "down-1"
    # 1. no broker yet: events wait, then spill once 5,000 are unacknowledged
    _log(client, run_id, 0, 30_000)
    with pytest.raises(FlushError) as caught:
        client.flush(2.0)
    assert caught.value.unacknowledged >= 30_000 - 5_000
    assert log_files(spill), "nothing was spilled while the broker was away"
    # 2. the broker comes up: everything is delivered or resent
    private_kafka.start()
    ensure_topics(settings, partitions=3)
    client.flush(120.0)
    assert log_files(spill) == []
    # 3. stopped mid-run, more logged, started again
    private_kafka.stop()
    _log(client, run_id, 30_000, 30_000)
    with pytest.raises(FlushError):
        client.flush(3.0)
    private_kafka.start()
    client.flush(120.0)
    assert log_files(spill) == []
    client.close(10.0)
    _assert_all_once(settings, run_id, 60_000)


@pytest.mark.integration
def test_spill_files_of_a_gone_process_are_resent(sdk_settings: Settings, tmp_path: Path) -> None:
    nowhere = Settings.resolve(
        f"kafka://127.0.0.1:{free_port()}", topic_prefix=sdk_settings.topic_prefix, environ={}
    )
    spill = tmp_path / "spill"
    client = Client(settings=nowhere, spill_dir=spill, max_in_flight=1_000)
    _log(client, "gone-1", 0, 5_000)
    left = client.close(1.0)
    assert left >= 5_000  # all of it, reported, nothing dropped: it is in the spill files
    assert log_files(spill)
    # logged to another broker (a dead port), resent to this one: every destination
    resent = resend_spill_files(sdk_settings, spill, timeout=60.0, every_destination=True)
    assert resent == left
    assert log_files(spill) == []
    _assert_all_once(sdk_settings, "gone-1", 5_000)
