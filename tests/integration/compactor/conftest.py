"""Fixtures of the compactor's integration tests: a fresh events topic, a producer of
schema-built batches, compactor workers in threads or processes, a private S3 server."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Producer as KafkaProducer

from runstream.compactor import BufferPolicy, Compactor, CompactorConfig, Snapshots, Stats, Store
from runstream.compactor.uploads import UploadProcesses
from runstream.contract import Codec, EventBatch, encode_batch
from runstream.contract.layout import METRICS_DIR, live_files
from runstream.core.filesystem import open_store
from runstream.core.kafka_admin import ensure_topics
from runstream.core.settings import Settings
from runstream.core.source import KafkaSource
from tests.batches import metric_batch as batch_of_points
from tests.integration.conftest import wait_for

REPO = Path(__file__).resolve().parents[3]
PARTITIONS = 4


def metric_batch(
    run_id: str,
    producer: str,
    first_sequence: int,
    keys: Sequence[str],
    start_step: int,
    count: int,
    ended: bool = False,
) -> EventBatch:
    """:func:`tests.batches.metric_batch`, a RunEnded stamped now."""
    return batch_of_points(
        run_id, producer, first_sequence, keys, start_step, count, ended, time.time_ns() // 1000
    )


def truth_of(
    batches: Iterable[EventBatch],
) -> dict[tuple[str, str, int], tuple[str, int, int, float]]:
    """(run, producer, sequence) -> (key, step, timestamp, value) of every point."""
    truth = {}
    for batch in batches:
        for event in batch.logical_events():
            payload = event.payload
            if type(payload).__name__ == "MetricLogged":
                truth[(batch.run_id, event.id.producer, event.id.sequence)] = (
                    payload.key,  # type: ignore[union-attr]
                    payload.step,  # type: ignore[union-attr]
                    payload.timestamp,  # type: ignore[union-attr]
                    payload.value,  # type: ignore[union-attr]
                )
    return truth


def store_rows(settings: Settings) -> list[tuple[str, str, pa.Table]]:
    """(run id, path, table) of every live metric file of the store (listed again when a
    merge deletes a file between the listing and the read)."""
    for _ in range(20):
        try:
            return _store_rows(settings)
        except FileNotFoundError:
            time.sleep(0.1)
    return _store_rows(settings)


def _store_rows(settings: Settings) -> list[tuple[str, str, pa.Table]]:
    fs, root = open_store(settings)
    fs.invalidate_cache()
    folder = f"{root}/{METRICS_DIR}"
    if not fs.exists(folder):
        return []
    found = []
    for run_folder in fs.ls(folder, detail=False, refresh=True):
        run_id = run_folder.rsplit("run_id=", 1)[1]
        for path in live_files(fs.ls(run_folder, detail=False, refresh=True)):
            with fs.open(path, "rb") as handle:
                found.append((run_id, path, pq.read_table(handle)))
    return found


def store_points(
    settings: Settings,
) -> list[tuple[tuple[str, str, int], tuple[str, int, int, float]]]:
    """Every row of the live metric files as ((run, producer, sequence), (key, step, ts, value))."""
    points = []
    for run_id, _, table in store_rows(settings):
        columns = [
            table[c].to_pylist()
            for c in ("producer_id", "sequence", "key", "step", "timestamp", "value")
        ]
        for producer, sequence, key, step, timestamp, value in zip(*columns, strict=True):
            points.append(((run_id, producer, sequence), (key, step, timestamp, value)))
    return points


@pytest.fixture
def events_topic(s3_settings: Settings) -> str:
    """A fresh events topic of this test's own (PARTITIONS partitions)."""
    return ensure_topics(s3_settings, partitions=PARTITIONS).events


@pytest.fixture
def produce(s3_settings: Settings, events_topic: str) -> Callable[[Iterable[EventBatch]], None]:
    """Produce batches to the events topic, keyed by run id, acknowledged (acks=all)."""
    codec = Codec()
    producer = KafkaProducer(
        s3_settings.kafka_config(**{"acks": "all", "enable.idempotence": True, "linger.ms": 5})
    )

    def send(batches: Iterable[EventBatch]) -> None:
        for batch in batches:
            producer.produce(events_topic, encode_batch(codec, batch), batch.run_id.encode())
            producer.poll(0)
        assert producer.flush(30) == 0, "messages left unacknowledged"

    return send


class DelayedStore(Store):
    """A store whose metric file writes land ``delay_s`` late (a slow S3)."""

    def __init__(self, *args: Any, delay_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.delay_s = delay_s

    def write(self, path: str, data: bytes) -> None:
        if f"/{METRICS_DIR}/" in path:
            time.sleep(self.delay_s)
        super().write(path, data)


@dataclass
class Worker:
    """A compactor worker running in a thread."""

    compactor: Compactor
    thread: threading.Thread
    stats: list[Stats] = field(default_factory=list)

    def stop(self) -> Stats:
        self.compactor.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "compactor did not stop"
        return self.compactor.stats


@pytest.fixture
def start_worker(
    s3_settings: Settings, events_topic: str, unique: str
) -> Iterator[Callable[..., Worker]]:
    """Start a compactor worker thread: ``start_worker(store_settings=None, policy=None,
    uploads=False, write_delay_s=0, **config)``; ``uploads``: PUT from helper processes, as
    ``runstream compactor`` does by default; ``write_delay_s``: metric files land that late."""
    workers: list[Worker] = []
    sources: list[KafkaSource] = []
    upload_pools: list[UploadProcesses] = []

    def start(
        store_settings: Settings | None = None,
        policy: BufferPolicy | None = None,
        uploads: bool = False,
        write_delay_s: float = 0.0,
        **config: object,
    ) -> Worker:
        stop = threading.Event()
        fs, root = open_store(store_settings or s3_settings)
        if uploads:
            upload_pools.append(UploadProcesses(store_settings or s3_settings))
        store = DelayedStore(
            fs,
            root,
            stop=stop,
            uploads=upload_pools[-1] if uploads else None,
            delay_s=write_delay_s,
        )
        codec = Codec()
        source = KafkaSource(s3_settings, events_topic, f"{unique}-compactor")
        sources.append(source)
        worker = Compactor(
            source,
            store,
            codec,
            CompactorConfig(policy=policy or BufferPolicy(), **config),  # type: ignore[arg-type]
            snapshots=Snapshots(store, codec),
            stop=stop,
        )
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        handle = Worker(worker, thread)
        workers.append(handle)
        return handle

    yield start
    for handle in workers:
        if handle.thread.is_alive():
            handle.stop()
    for source in sources:
        source.close()
    for pool in upload_pools:
        pool.close()


@pytest.fixture
def compactor_process(
    s3_settings: Settings, unique: str
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``python -m runstream.compactor`` on this test's topic and store; killed at teardown.

    ``start(*args, env=None, static=True, module="runstream.compactor")``: ``env`` overrides
    variables (a wrong secret, another endpoint); ``static``: static group membership;
    ``module``: another entry point taking the same arguments."""
    processes: list[subprocess.Popen[bytes]] = []
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"{unique}-compactor.log", "ab")  # noqa: SIM115

    def start(
        *args: str,
        env: dict[str, str] | None = None,
        static: bool = True,
        module: str = "runstream.compactor",
    ) -> subprocess.Popen[bytes]:
        variables = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "RUNSTREAM_TRACKING_URI": str(s3_settings.tracking_uri),
            "RUNSTREAM_STORE": s3_settings.store,
            "RUNSTREAM_S3_ENDPOINT": s3_settings.s3_endpoint or "",
            "RUNSTREAM_TOPIC_PREFIX": s3_settings.topic_prefix,
            # static membership: a restarted worker takes its place without waiting for the
            # killed one's session to time out
            "RUNSTREAM_KAFKA_GROUP_INSTANCE_ID": f"{unique}-compactor-0",
            "RUNSTREAM_KAFKA_SESSION_TIMEOUT_MS": "10000",
            **(env or {}),
        }
        if not static:
            del variables["RUNSTREAM_KAFKA_GROUP_INSTANCE_ID"]
            variables["RUNSTREAM_KAFKA_SESSION_TIMEOUT_MS"] = "6000"
        process = subprocess.Popen(
            [sys.executable, "-m", module, "--group", f"{unique}-compactor", *args],
            env=variables,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    log.close()


@pytest.fixture
def helpers() -> SimpleNamespace:
    """The module's helper functions, for tests (test modules cannot import conftest)."""
    return SimpleNamespace(
        metric_batch=metric_batch,
        truth_of=truth_of,
        store_rows=store_rows,
        store_points=store_points,
        wait_for=wait_for,
    )
