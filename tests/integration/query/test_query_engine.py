"""The query engine on the local stack: answers equal the ground truth computed here from
the produced events, Parquet and the uncompacted tail together."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from runstream.contract import (
    Event,
    EventBatch,
    MetricColumns,
    ParamLogged,
    Producer,
    RunDeleted,
    RunEnded,
    RunStarted,
    TagSet,
)
from runstream.contract.exceptions import UnsafeRunIdError
from runstream.contract.layout import part_path
from runstream.contract.parquet import METRIC_SCHEMA
from runstream.query import FilterError, QueryEngine, RunNotFoundError, SqlError

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000_000  # µs


class Writer:
    """One producer of one run: batches with contiguous sequences."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.producer = Producer(uuid.uuid4().hex, "test-host", 1)
        self.sequence = 0

    def batch(
        self, *events: Event, points: list[tuple[str, int, float]] | None = None
    ) -> EventBatch:
        columns = MetricColumns()
        for key, step, value in points or []:
            if key not in columns.keys:
                columns.keys.append(key)
            columns.key_index.append(columns.keys.index(key))
            columns.steps.append(step)
            columns.values.append(value)
            columns.timestamps.append(T0 // 1000 + step)
        batch = EventBatch(self.run_id, self.producer, self.sequence, tuple(events), columns)
        self.sequence += len(batch)
        return batch


def started(name: str, collection: str, tags: dict[str, str], at: int = 0) -> Event:
    return Event(
        T0 + at, RunStarted(start_time_us=T0 + at, name=name, collection=collection, tags=tags)
    )


def curve(step: int) -> float:
    return math.sin(step / 50.0) + (100.0 if step == 777 else 0.0)  # one spike at step 777


def history_batches(writer: Writer, key: str, steps: range, size: int) -> Iterator[EventBatch]:
    for first in range(steps.start, steps.stop, size):
        chunk = range(first, min(first + size, steps.stop))
        yield writer.batch(points=[(key, s, curve(s)) for s in chunk])


@pytest.fixture
def world(stack_env: Any) -> dict[str, object]:
    """Three runs: r1 with 1,000 loss points (the first 600 compacted to Parquet, one batch
    re-sent), r2 finished, r3 deleted."""
    r1, r2, r3 = Writer("r1-alpha"), Writer("r2-beta"), Writer("r3-gamma")
    first = stack_env.produce(
        [
            r1.batch(
                started("alpha", "exp-a", {"team": "vision"}),
                Event(T0 + 1, ParamLogged("lr", "0.01")),
                Event(T0 + 2, ParamLogged("note", "it's; DROP TABLE runs; --")),
                Event(T0 + 3, TagSet("stage", "dev")),
            ),
            r2.batch(
                started("beta", "exp-a", {"team": "nlp"}, at=1000),
                Event(T0 + 1001, ParamLogged("lr", "0.1")),
                Event(T0 + 1002, ParamLogged("note", "plain")),
            ),
            r3.batch(started("gamma", "exp-b", {}, at=2000)),
        ]
    )
    compacted = stack_env.produce(history_batches(r1, "loss", range(0, 600), 100))
    stack_env.compact(compacted)
    resent = compacted[-1].batch  # delivered again after a producer retry: same identity
    tail = stack_env.produce([resent, *history_batches(r1, "loss", range(600, 1000), 100)])
    stack_env.produce(
        [
            r1.batch(points=[("acc", s, s / 10) for s in range(5)]),
            r2.batch(
                Event(T0 + 1100, RunEnded("FINISHED", T0 + 5000)),
                points=[("loss", s, 1.0 / (s + 1)) for s in range(10)],
            ),
            r3.batch(Event(T0 + 3000, RunDeleted("test"))),
        ]
    )
    return {"first": first, "compacted": compacted, "tail": tail}


def test_history_equals_ground_truth_parquet_and_tail(
    engine: QueryEngine, world: dict[str, object]
) -> None:
    history = engine.get_metric_history("r1-alpha", "loss")
    assert history.column_names == ["step", "timestamp", "value"]
    assert history["step"].to_pylist() == list(range(1000))
    assert history["value"].to_pylist() == [curve(s) for s in range(1000)]
    assert history["timestamp"].to_pylist() == [T0 // 1000 + s for s in range(1000)]
    # the compacted points did come from Parquet: the tail before the file is gone from memory
    compacted: list[Any] = world["compacted"]  # type: ignore[assignment]
    assert engine.sql(
        "SELECT count(*) FROM metric_history WHERE run_id = ? AND key = 'loss' AND \"offset\" <= ?",
        ["r1-alpha", compacted[-1].offset],
    ).to_pylist() == [{"count_star()": 600}]


def test_a_point_logged_just_now_is_in_the_answer(
    engine: QueryEngine, world: dict[str, object], stack_env: Any
) -> None:
    assert engine.get_metric_history("r1-alpha", "acc").num_rows == 5
    writer = Writer("r1-alpha")
    stack_env.produce([writer.batch(points=[("acc", 99, 9.9)])])
    history = engine.get_metric_history("r1-alpha", "acc")
    assert history["step"].to_pylist() == [0, 1, 2, 3, 4, 99]
    assert engine.get_run("r1-alpha").metrics["acc"].value == 9.9


def test_step_range_and_downsample_keep_spikes(
    engine: QueryEngine, world: dict[str, object]
) -> None:
    window = engine.get_metric_history("r1-alpha", "loss", start_step=590, end_step=610)
    assert window["step"].to_pylist() == list(range(590, 611))
    buckets = engine.get_metric_history("r1-alpha", "loss", max_points=50)
    assert buckets.num_rows == 50
    assert max(buckets["max"].to_pylist()) == curve(777)  # the spike survives
    values = np.array([curve(s) for s in range(1000)])
    assert buckets["min"].to_pylist() == [values[i : i + 20].min() for i in range(0, 1000, 20)]
    assert buckets["value"].to_pylist() == [values[i + 19] for i in range(0, 1000, 20)]
    assert buckets["step"].to_pylist() == list(range(19, 1000, 20))


def test_runs_params_tags_and_latest_metrics(engine: QueryEngine, world: dict[str, object]) -> None:
    run = engine.get_run("r1-alpha")
    assert (run.name, run.collection, run.status) == ("alpha", "exp-a", "RUNNING")
    assert run.params == {"lr": "0.01", "note": "it's; DROP TABLE runs; --"}
    assert run.tags == {"team": "vision", "stage": "dev"}
    assert run.metrics["loss"].step == 999 and run.metrics["loss"].value == curve(999)
    assert run.metrics["loss"].max == curve(777)
    beta = engine.get_run("r2-beta")
    assert (beta.status, beta.end_time_us) == ("FINISHED", T0 + 5000)
    with pytest.raises(RunNotFoundError):
        engine.get_run("r3-gamma")  # deleted
    rows = engine.sql("SELECT run_id, status FROM runs ORDER BY run_id").to_pylist()
    assert rows == [
        {"run_id": "r1-alpha", "status": "RUNNING"},
        {"run_id": "r2-beta", "status": "FINISHED"},
    ]
    latest = engine.sql("SELECT run_id, key, step FROM metrics ORDER BY run_id, key").to_pylist()
    assert latest == [
        {"run_id": "r1-alpha", "key": "acc", "step": 4},
        {"run_id": "r1-alpha", "key": "loss", "step": 999},
        {"run_id": "r2-beta", "key": "loss", "step": 9},
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("params.lr > 0.05", ["r2-beta"]),
        ("params.lr < 1 AND tags.team = 'vision'", ["r1-alpha"]),
        ("status = 'FINISHED' OR name LIKE 'alp%'", ["r2-beta", "r1-alpha"]),
        ("(tags.team IN ('nlp', 'vision')) AND metrics.loss < 0.5", ["r2-beta"]),
        ("collection = 'exp-a' AND start_time >= '2023-11-14T22:13:20.001'", ["r2-beta"]),
        ("params.note = 'it''s; DROP TABLE runs; --'", ["r1-alpha"]),
        ("params.note = 'x'' OR ''1''=''1'", []),
        ("name = 'alpha\" OR 1=1 --'", []),
        ("tags.`team` NOT IN ('nlp')", ["r1-alpha"]),
    ],
)
def test_search_runs(
    engine: QueryEngine, world: dict[str, object], text: str, expected: list[str]
) -> None:
    assert [run.run_id for run in engine.search_runs(text)] == expected
    assert len(engine.search_runs()) == 2  # the views survived every filter


def test_search_order_and_limit(engine: QueryEngine, world: dict[str, object]) -> None:
    ids = [r.run_id for r in engine.search_runs(order_by=["params.lr DESC"])]
    assert ids == ["r2-beta", "r1-alpha"]
    assert [r.run_id for r in engine.search_runs(order_by=["name"], max_results=1)] == ["r1-alpha"]


@pytest.mark.parametrize(
    "text",
    ["params.lr > 0.01; DROP TABLE runs", "params.lr = 1 UNION SELECT 1", "1=1", "tags.x ==== 'a'"],
)
def test_bad_filters_are_rejected(engine: QueryEngine, world: dict[str, object], text: str) -> None:
    with pytest.raises(FilterError):
        engine.search_runs(text)


def test_run_id_cannot_escape_its_folder(
    engine: QueryEngine, world: dict[str, object], stack_env: Any
) -> None:
    with pytest.raises(UnsafeRunIdError):
        engine.get_metric_history("../metrics/run_id=r1-alpha", "loss")
    with pytest.raises(UnsafeRunIdError):
        engine.get_metric_history("r2-beta/../r1-alpha", "loss")
    # a file one level above the runs' folders is never read as a run's history
    stray = part_path(stack_env.root, "r1-alpha", 0, 0, 0).replace("/run_id=r1-alpha", "")
    with stack_env.fs.open(stray, "wb") as file:
        pq.write_table(METRIC_SCHEMA.empty_table(), file)
    assert engine.get_metric_history("r2-beta", "loss").num_rows == 10


def test_sql_binds_parameters_and_cannot_touch_files(
    engine: QueryEngine, world: dict[str, object]
) -> None:
    rows = engine.sql("SELECT key, value FROM params WHERE run_id = ? ORDER BY key", ["r2-beta"])
    assert rows.to_pylist() == [{"key": "lr", "value": "0.1"}, {"key": "note", "value": "plain"}]
    evil = "r2-beta' OR '1'='1"
    assert engine.sql("SELECT * FROM params WHERE run_id = $id", {"id": evil}).num_rows == 0
    with pytest.raises(SqlError):
        engine.sql("SELECT * FROM read_csv('/etc/passwd')")
    with pytest.raises(SqlError):
        engine.sql("COPY runs TO '/tmp/runstream-leak.csv'")


def test_stats_and_several_histories(engine: QueryEngine, world: dict[str, object]) -> None:
    stats = engine.stats("r1-alpha", "loss")
    values = np.array([curve(s) for s in range(1000)])
    assert stats.count == 1000
    assert stats.max == values.max() and stats.min == values.min()
    assert stats.mean == pytest.approx(values.mean())
    assert (stats.first_step, stats.last_step, stats.last_value) == (0, 999, curve(999))
    table = engine.get_metrics_history(["r1-alpha", "r2-beta"], ["loss"])
    counts = table.group_by("run_id").aggregate([("step", "count")]).to_pylist()
    assert sorted((c["run_id"], c["step_count"]) for c in counts) == [
        ("r1-alpha", 1000),
        ("r2-beta", 10),
    ]


def test_refresh_is_incremental(
    engine: QueryEngine, world: dict[str, object], stack_env: Any
) -> None:
    engine.get_run("r1-alpha")
    assert engine.refresh() == 0
    stack_env.produce([Writer("r4-delta").batch(started("delta", "exp-c", {}))])
    assert engine.refresh() == 1
    assert engine.get_run("r4-delta").name == "delta"
