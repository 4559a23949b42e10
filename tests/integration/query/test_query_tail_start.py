"""The query's tail starts where the compactor committed (Kafka + S3, and the embedded mode):
a new engine reads no record below the committed positions, yet its run states equal a fold
of the whole log, and every history equals the points the log holds, each once (checked by
DuckDB over the Parquet files plus a plain fold), including a run whose points the compactor
still holds below a later committed offset, and while the compactor keeps writing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, TopicPartition

from runstream.apps.embedded import process
from runstream.compactor import BufferPolicy, Compactor, CompactorConfig, Store
from runstream.compactor.snapshots import Snapshots
from runstream.contract import (
    Codec,
    Event,
    EventBatch,
    MetricColumns,
    ParamLogged,
    Producer,
    RunEnded,
    RunStarted,
    TagSet,
    encode_batch,
)
from runstream.contract.layout import METRICS_DIR
from runstream.contract.state import RunState, fold
from runstream.core.filesystem import open_store
from runstream.core.locallog import LogWriter
from runstream.core.logsource import events_folder
from runstream.core.settings import Settings
from runstream.core.source import KafkaSource, Record
from runstream.processor.synthetic import workload
from runstream.query import QueryEngine
from runstream.query.tail import committed_start, event_log, key_partition

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000_000


class CountingLog:
    """An event log that remembers every record it handed out."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.records: list[tuple[int, int]] = []

    def read(
        self, start: Mapping[int, int], partitions: Collection[int] | None = None
    ) -> Iterator[Record]:
        for record in self.inner.read(start, partitions):
            self.records.append((record.partition, record.offset))
            yield record

    def partitions_of(self, run_id: str) -> frozenset[int] | None:
        return self.inner.partitions_of(run_id) if hasattr(self.inner, "partitions_of") else None

    def close(self) -> None:
        getattr(self.inner, "close", lambda: None)()


def engine_over(settings: Settings, *, whole: bool) -> tuple[QueryEngine, CountingLog]:
    fs, root = open_store(settings)
    log = CountingLog(event_log(settings))
    start = None if whole else (lambda: committed_start(settings))
    return QueryEngine(log, fs, root, tail_start=start), log


def points_batch(run_id: str, producer: Producer, first: int, steps: range) -> EventBatch:
    return EventBatch(
        run_id,
        producer,
        first,
        (),
        MetricColumns(
            ["loss"],
            [0] * len(steps),
            list(steps),
            [s * 0.5 for s in steps],
            [T0 // 1000 + s for s in steps],
        ),
    )


def run_batches(run_id: str, points: int, size: int, end: bool) -> list[EventBatch]:
    """A run: started with tags, params, ``points`` loss points in batches, maybe ended."""
    producer = Producer(uuid.uuid4().hex, "h", 1)
    head = EventBatch(
        run_id,
        producer,
        0,
        (
            Event(T0, RunStarted(start_time_us=T0, name=run_id, collection="c", tags={"t": "1"})),
            Event(T0 + 1, ParamLogged("lr", "0.1")),
            Event(T0 + 2, TagSet("phase", "train")),
        ),
    )
    batches = [head]
    sequence = 3
    for first in range(0, points, size):
        steps = range(first, min(first + size, points))
        batches.append(points_batch(run_id, producer, sequence, steps))
        sequence += len(steps)
    if end:
        batches.append(
            EventBatch(
                run_id,
                producer,
                sequence,
                (Event(T0 + 10**6, RunEnded("FINISHED", T0 + 10**6)),),
            )
        )
    return batches


def compact(stack_env: Any, max_points: int, stop: threading.Event | None = None) -> None:
    """The real compactor, in the group the query reads, with snapshots, until idle (or
    until ``stop`` is set)."""
    settings = stack_env.settings
    source = KafkaSource(settings, stack_env.topics.events, stack_env.topics.compactor_group)
    store = Store(stack_env.fs, stack_env.root)
    config = CompactorConfig(policy=BufferPolicy(max_points=max_points, rotate_interval_s=3600))
    worker = Compactor(source, store, stack_env.codec, config, snapshots=Snapshots(store, Codec()))
    try:
        idle = 0
        while (idle < 30) if stop is None else not stop.is_set():
            idle = idle + 1 if worker.step() == 0 else 0
        worker.drain()
    finally:
        worker.close()
        source.close()


def committed(settings: Settings, topic: str, group: str) -> dict[int, int]:
    """The group's committed offsets, asked with a plain consumer (not the code under test)."""
    consumer = Consumer(settings.kafka_config(**{"group.id": group}))
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        found = consumer.committed([TopicPartition(topic, p) for p in metadata.partitions], 10)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in found if tp.offset >= 0}


def parquet_steps(settings: Settings, run_id: str) -> list[int]:
    """The distinct loss points of ``run_id`` in its Parquet files (read by DuckDB over the
    files' bytes), as sorted steps."""
    fs, root = open_store(settings)
    paths = fs.glob(f"{root}/{METRICS_DIR}/run_id={run_id}/*.parquet")
    tables = []
    for path in paths:
        with fs.open(path, "rb") as handle:
            tables.append(pq.read_table(handle))
    if not tables:
        return []
    points = pa.concat_tables(tables)  # noqa: F841 - DuckDB reads it by name
    rows = duckdb.sql(
        "SELECT DISTINCT step, producer_id, sequence FROM points WHERE key = 'loss' ORDER BY step"
    ).fetchall()
    return [row[0] for row in rows]


def same_states(a: Mapping[str, RunState], b: Mapping[str, RunState]) -> None:
    assert sorted(a) == sorted(b)
    for run_id in a:
        assert a[run_id] == b[run_id], run_id


def test_a_new_engine_reads_only_past_the_committed_offsets(stack_env: Any) -> None:
    big = run_batches("big-run", 3_000, 250, end=True)  # compacted: 250-point files, merged
    small = run_batches("small-run", 40, 10, end=False)  # under the threshold: held
    sent = stack_env.produce(big + small)
    compact(stack_env, max_points=500)
    late = stack_env.produce(
        [points_batch("big-run", big[0].producer, 10_000, range(3_000, 3_100))]
    )
    topic, group = stack_env.topics.events, stack_env.topics.compactor_group
    commits = committed(stack_env.settings, topic, group)
    assert commits, "the compactor committed nothing"
    small_partition = {s.partition for s in sent if s.batch.run_id == "small-run"}.pop()
    first_small = min(s.offset for s in sent if s.batch.run_id == "small-run")
    # the small run's points are held: its partition is committed no further than them
    assert commits.get(small_partition, 0) <= first_small

    started, log = engine_over(stack_env.settings, whole=False)
    whole, whole_log = engine_over(stack_env.settings, whole=True)
    with started, whole:
        history = started.get_metric_history("big-run", "loss")
        assert history["step"].to_pylist() == list(range(3_100))
        assert history["value"].to_pylist() == [s * 0.5 for s in range(3_100)]
        # the history read only big-run's partition, and nothing below the commit
        big_partition = {s.partition for s in sent if s.batch.run_id == "big-run"}.pop()
        assert {p for p, _ in log.records} <= {big_partition}
        assert all(o >= commits.get(p, 0) for p, o in log.records)
        assert len(log.records) == len(late)  # only the batch after the compaction
        small_history = started.get_metric_history("small-run", "loss")
        assert small_history["step"].to_pylist() == list(range(40))
        # states: the store's below the commit plus the fold above equal a fold of it all
        started.refresh()
        whole.refresh()
        states = started._tail.states()
        same_states(states, whole._tail.states())
        same_states(states, fold([*big, *small, *(s.batch for s in late)]))
        assert all(o >= commits.get(p, 0) for p, o in log.records)
        everything = len(big) + len(small) + len(late)
        assert len(whole_log.records) == everything
        assert len(log.records) == everything - sum(commits.values())
        run = started.get_run("big-run")
        assert (run.status, run.params, run.tags) == (
            "FINISHED",
            {"lr": "0.1"},
            {"t": "1", "phase": "train"},
        )
        # DuckDB over the Parquet files holds what the tail did not read
        assert parquet_steps(stack_env.settings, "big-run") == list(range(3_000))
    assert key_partition(b"big-run", len(started_partitions(stack_env))) == big_partition


def started_partitions(stack_env: Any) -> list[int]:
    consumer = Consumer(stack_env.settings.kafka_config(**{"group.id": uuid.uuid4().hex}))
    try:
        topic = stack_env.topics.events
        return list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    finally:
        consumer.close()


def test_states_of_a_mixed_workload_equal_the_whole_fold(stack_env: Any) -> None:
    stream = workload(runs=8, events=8_000, seed=7, duplicate_share=0.05)
    batches = list(stream.batches)
    stack_env.produce(batches[: len(batches) * 2 // 3])
    compact(stack_env, max_points=300)
    stack_env.produce(batches[len(batches) * 2 // 3 :])
    started, log = engine_over(stack_env.settings, whole=False)
    whole, _ = engine_over(stack_env.settings, whole=True)
    with started, whole:
        started.refresh()
        states = started._tail.states()
        commits = started._tail.start()
        assert commits and all(o >= commits.get(p, 0) for p, o in log.records)
        same_states(states, fold(batches))
        for run_id in {b.run_id for b in batches}:
            for key in states[run_id].metrics:
                a = rows(started.get_metric_history(run_id, key))
                assert a and a == rows(whole.get_metric_history(run_id, key)), (run_id, key)


def rows(table: pa.Table) -> list[str]:
    """A history's rows as text (NaN equals NaN)."""
    return [repr(row) for row in table.to_pylist()]


def test_histories_stay_whole_while_the_compactor_writes(stack_env: Any) -> None:
    producer = Producer(uuid.uuid4().hex, "h", 1)
    stop = threading.Event()
    worker = threading.Thread(target=compact, args=(stack_env, 200, stop))
    worker.start()
    try:
        total = 0
        for round_ in range(15):
            stack_env.produce([points_batch("live-run", producer, total, range(total, total + 97))])
            total += 97
            engine, _ = engine_over(stack_env.settings, whole=False)
            with engine:
                steps = engine.get_metric_history("live-run", "loss")["step"].to_pylist()
            assert steps == list(range(total)), round_
    finally:
        stop.set()
        worker.join(60)


def test_embedded_tail_starts_at_the_processed_positions(tmp_path: Path) -> None:
    settings = Settings.resolve(f"file://{tmp_path}", environ={})
    stream = workload(runs=5, events=5_000, seed=3, duplicate_share=0.05)
    batches = list(stream.batches)
    codec = Codec()
    writer = LogWriter(events_folder(settings) / "writer.avro")
    cut = len(batches) * 3 // 4
    writer.append((b.run_id, encode_batch(codec, b)) for b in batches[:cut])
    writer.sync()
    process(settings)
    writer.append((b.run_id, encode_batch(codec, b)) for b in batches[cut:])
    writer.close()
    positions = committed_start(settings)
    assert positions and sum(positions.values()) > 0
    started, log = engine_over(settings, whole=False)
    whole, whole_log = engine_over(settings, whole=True)
    with started, whole:
        started.refresh()
        same_states(started._tail.states(), fold(batches))
        assert len(log.records) == len(batches) - cut
        assert all(o >= positions.get(p, 0) for p, o in log.records)
        assert len(whole_log.records) == 0  # not refreshed yet
        for run_id in {b.run_id for b in batches}:
            for key in ("loss", "accuracy"):
                a = rows(started.get_metric_history(run_id, key))
                assert a and a == rows(whole.get_metric_history(run_id, key)), (run_id, key)
