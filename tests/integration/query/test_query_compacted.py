"""The engine over the real compactor's output on the local stack: two runs sharing a
partition flushed at different times, a re-sent batch, and points logged after the
compactor stopped; every point is answered exactly once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from runstream.compactor import BufferPolicy, Compactor, CompactorConfig, Store
from runstream.contract import EventBatch, MetricColumns, Producer
from runstream.core.source import KafkaSource
from runstream.query import QueryEngine

pytestmark = pytest.mark.integration


def points(run_id: str, producer: Producer, first_sequence: int, steps: range) -> EventBatch:
    return EventBatch(
        run_id,
        producer,
        first_sequence,
        (),
        MetricColumns(
            ["loss"],
            [0] * len(steps),
            list(steps),
            [s * 0.5 for s in steps],
            [1_700_000_000_000 + s for s in steps],
        ),
    )


def compact_all(stack_env: Any, max_points: int) -> None:
    """Run the compactor until it has read everything, writing only full buffers."""
    source = KafkaSource(stack_env.settings, stack_env.topics.events, f"c-{uuid.uuid4().hex}")
    config = CompactorConfig(policy=BufferPolicy(max_points=max_points, rotate_interval_s=3600))
    compactor = Compactor(source, Store(stack_env.fs, stack_env.root), stack_env.codec, config)
    try:
        idle = 0
        while idle < 20:
            idle = idle + 1 if compactor.step() == 0 else 0
        compactor.flush()
    finally:
        source.close()


def test_history_over_compactor_files_and_tail(stack_env: Any, engine: QueryEngine) -> None:
    a, b = Producer(uuid.uuid4().hex, "h", 1), Producer(uuid.uuid4().hex, "h", 2)
    # two runs on one partition, flushed at different times
    batches = []
    for i in range(6):
        batches.append(points("shared-a", a, i * 100, range(i * 100, i * 100 + 100)))
        batches.append(points("shared-b", b, i * 10, range(i * 10, i * 10 + 10)))
    sent = stack_env.produce(batches, partition=3)
    compact_all(stack_env, max_points=250)  # a flushes at 300 and 600 points; b never
    files = stack_env.fs.find(f"{stack_env.root}/metrics")
    assert any("run_id=shared-a" in f for f in files)
    assert not any("run_id=shared-b" in f for f in files)
    late = stack_env.produce(
        [points("shared-a", a, 600, range(600, 650)), points("shared-a", a, 500, range(500, 600))],
        partition=3,
    )  # the second one is a re-send of an already compacted batch
    assert late
    history = engine.get_metric_history("shared-a", "loss")
    assert history["step"].to_pylist() == list(range(650))
    assert history["value"].to_pylist() == [s * 0.5 for s in range(650)]
    other = engine.get_metric_history("shared-b", "loss")
    assert other["step"].to_pylist() == list(range(60))
    counts = engine.sql(
        "SELECT run_id, count(*) AS n FROM metric_history GROUP BY run_id ORDER BY run_id"
    ).to_pylist()
    assert counts == [{"run_id": "shared-a", "n": 650}, {"run_id": "shared-b", "n": 60}]
    assert {s.partition for s in sent} == {3}
