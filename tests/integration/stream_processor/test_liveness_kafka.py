"""Run liveness on kafka://: a trainer SIGKILLed with its run open is published CRASHED on
the runs topic by the processor once the lease (3 s) passes, and shown CRASHED by the query
engine; a resumed process on the same run id makes it RUNNING again, and its normal exit
FINISHED; a restarted processor finds a run that went silent while it was down; runs left
open by a process that returns, raises or calls sys.exit(3) are published FINISHED, FAILED,
FAILED and never CRASHED. The runs topic is read with a plain consumer and decoded with
fastavro."""

from __future__ import annotations

import io
import json
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from fastavro import parse_schema, schemaless_reader

from runstream.core.settings import Settings
from runstream.core.topics import Topics
from runstream.query import QueryEngine
from tests.liveness import (
    ENDINGS,
    LEASE,
    finish,
    liveness_env,
    run_to_the_end,
    start_trainer,
    wait_until,
)

pytestmark = pytest.mark.integration

AVRO = Path(str(resources.files("runstream.contract").joinpath("avro")))


@pytest.fixture(autouse=True)
def short_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    """The processor workers of this module judge runs with the 3 s lease."""
    monkeypatch.setenv("RUNSTREAM_RUN_LEASE", str(LEASE))


def run_state_schemas() -> dict[bytes, Any]:
    """Every run_state version by its fingerprint, parsed by fastavro from the .avsc files."""
    from fastavro.schema import fingerprint, to_parsing_canonical_form

    schemas = {}
    for path in AVRO.glob("run_state.v*.avsc"):
        parsed = parse_schema(json.loads(path.read_text()))
        canonical = to_parsing_canonical_form(parsed)
        schemas[bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))] = parsed
    return schemas


class RunsTopic:
    """The runs topic read from the start with a plain consumer (own group, no commits)."""

    def __init__(self, settings: Settings) -> None:
        self.topic = Topics(settings.topic_prefix).runs
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.tracking_uri.bootstrap_servers,
                "group.id": f"liveness-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self.schemas = run_state_schemas()
        self.latest: dict[str, dict[str, Any] | None] = {}
        self.assigned = False

    def _assign(self) -> bool:
        metadata = self.consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            return False
        self.consumer.assign([TopicPartition(self.topic, p, 0) for p in metadata.partitions])
        return True

    def status(self, run_id: str) -> str | None:
        """The status of the last state of ``run_id`` read so far (after reading what came)."""
        if not self.assigned:
            self.assigned = self._assign()
            if not self.assigned:
                return None
        for _ in range(1000):  # bounded: at most 1000 messages a call
            message = self.consumer.poll(0.2)
            if message is None:
                break
            if message.error() is not None:
                continue
            value = message.value()
            key = message.key().decode()
            if value is None:
                self.latest[key] = None
                continue
            assert value[:2] == b"\xc3\x01"
            schema = self.schemas[bytes(value[2:10])]
            self.latest[key] = schemaless_reader(io.BytesIO(value[10:]), schema)
        record = self.latest.get(run_id)
        if record is None or record["status"] is None:
            return None
        return str(record["status"]["value"])

    def record(self, run_id: str) -> dict[str, Any] | None:
        return self.latest.get(run_id)

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture
def runs_topic(kafka_settings: Settings) -> Iterator[RunsTopic]:
    reader = RunsTopic(kafka_settings)
    yield reader
    reader.close()


def test_a_killed_trainer_is_published_crashed_then_running_when_resumed_then_finished(
    kafka_settings: Settings,
    topics: Topics,
    start_worker: Callable[..., Any],
    runs_topic: RunsTopic,
) -> None:
    run_id = f"live-{uuid.uuid4().hex[:8]}"
    worker = start_worker("w1")
    env = liveness_env(
        {
            "RUNSTREAM_TRACKING_URI": str(kafka_settings.tracking_uri),
            "RUNSTREAM_TOPIC_PREFIX": kafka_settings.topic_prefix,
            "RUNSTREAM_STORE": kafka_settings.store,
            "RUNSTREAM_S3_ENDPOINT": kafka_settings.s3_endpoint or "",
        }
    )
    trainer = start_trainer(env, run_id, 1)
    seen, _ = wait_until(lambda: runs_topic.status(run_id), "RUNNING", 120)
    assert seen == "RUNNING", "the processor never published the run"
    time.sleep(LEASE * 1.5)  # heartbeats keep it RUNNING past the lease
    assert runs_topic.status(run_id) == "RUNNING"
    trainer.send_signal(signal.SIGKILL)
    assert trainer.wait(30) == -signal.SIGKILL
    seen, waited = wait_until(lambda: runs_topic.status(run_id), "CRASHED", 60)
    assert seen == "CRASHED", "the processor did not publish CRASHED after the lease"
    assert waited >= LEASE / 2  # the last heartbeat came at most 0.75 s before the kill
    record = runs_topic.record(run_id)
    assert record is not None and record["heartbeats"] is True
    assert record["ended"] is None and record["last_heard_us"] is not None

    settings = Settings.resolve(
        str(kafka_settings.tracking_uri),
        kafka_settings.store,
        s3_endpoint=kafka_settings.s3_endpoint,
        topic_prefix=kafka_settings.topic_prefix,
        run_lease=LEASE,
        environ={},
    )
    with QueryEngine.from_settings(settings) as engine:
        assert engine.get_run(run_id).status == "CRASHED"
        assert run_id in [r.run_id for r in engine.search_runs("status = 'CRASHED'")]

    resumed = start_trainer(env, run_id, 2)
    seen, _ = wait_until(lambda: runs_topic.status(run_id), "RUNNING", 60)
    assert seen == "RUNNING", "a resumed run was not published RUNNING again"
    with QueryEngine.from_settings(settings) as engine:
        assert engine.get_run(run_id).status == "RUNNING"
    assert finish(resumed) == 0
    seen, _ = wait_until(lambda: runs_topic.status(run_id), "FINISHED", 60)
    assert seen == "FINISHED"
    time.sleep(LEASE * 1.5)  # an ended run is never CRASHED
    assert runs_topic.status(run_id) == "FINISHED"
    assert worker.poll() is None, "the processor worker died"


def test_a_run_that_crashed_while_the_processor_was_down_is_published_crashed_after_restart(
    kafka_settings: Settings,
    topics: Topics,
    start_worker: Callable[..., Any],
    runs_topic: RunsTopic,
) -> None:
    # The new worker has a fresh data folder: it restores the table from the changelog and
    # finds the open run by scanning it, since no event of the run comes again.
    run_id = f"live-{uuid.uuid4().hex[:8]}"
    first = start_worker("w1", "--session-timeout", "10")
    env = liveness_env(
        {
            "RUNSTREAM_TRACKING_URI": str(kafka_settings.tracking_uri),
            "RUNSTREAM_TOPIC_PREFIX": kafka_settings.topic_prefix,
        }
    )
    trainer = start_trainer(env, run_id, 1)
    seen, _ = wait_until(lambda: runs_topic.status(run_id), "RUNNING", 120)
    assert seen == "RUNNING", "the processor never published the run"
    first.send_signal(signal.SIGKILL)
    assert first.wait(30) == -signal.SIGKILL
    trainer.send_signal(signal.SIGKILL)
    assert trainer.wait(30) == -signal.SIGKILL
    time.sleep(LEASE * 2)
    assert runs_topic.status(run_id) == "RUNNING"  # nobody published the crash
    second = start_worker("w2", "--session-timeout", "10")
    seen, _ = wait_until(lambda: runs_topic.status(run_id), "CRASHED", 120)
    assert seen == "CRASHED", "the restarted processor did not find the silent run"
    assert second.poll() is None, "the processor worker died"


def test_runs_left_open_are_published_finished_or_failed_and_never_crashed(
    kafka_settings: Settings,
    topics: Topics,
    start_worker: Callable[..., Any],
    runs_topic: RunsTopic,
) -> None:
    worker = start_worker("w1")
    env = liveness_env(
        {
            "RUNSTREAM_TRACKING_URI": str(kafka_settings.tracking_uri),
            "RUNSTREAM_TOPIC_PREFIX": kafka_settings.topic_prefix,
        }
    )
    expected = {}
    for name, (ending, status) in ENDINGS.items():
        run_id = f"end-{uuid.uuid4().hex[:8]}"
        assert (run_to_the_end(env, run_id, ending) == 0) == (status == "FINISHED"), name
        expected[run_id] = status

    def statuses() -> str:
        return json.dumps({run_id: runs_topic.status(run_id) for run_id in expected})

    want = json.dumps(expected)
    seen, _ = wait_until(statuses, want, 120)
    assert seen == want
    time.sleep(LEASE * 1.5)  # past the lease: an ended run stays ended
    assert statuses() == want
    assert worker.poll() is None, "the processor worker died"
