"""Issue 17: a listing of a run with many metric keys builds only what it reads: the search
registers only the rows of the keys its filter and order read, a Run's metrics are built
per key on demand, and the answers equal those over every row."""

from __future__ import annotations

from pathlib import Path

from runstream.contract import EventBatch, MetricColumns, Producer
from runstream.contract.events import Event, ParamLogged, RunStarted
from runstream.contract.state import fold
from runstream.core.settings import Settings
from runstream.query.cli import run_row
from runstream.query.engine import QueryEngine
from runstream.query.filters import compile_filter, compile_order
from runstream.query.runs import LatestMetric, LatestMetrics, state_tables
from tests.unit.embedded.test_process import write_log

KEYS = 20_000


def _batches() -> list[EventBatch]:
    producer = Producer("p", "h", 1)
    out = []
    for n, run_id in enumerate(("a", "b", "c")):
        keys = [f"m{i:05d}" for i in range(KEYS)]
        columns = MetricColumns(
            keys, list(range(KEYS)), [1] * KEYS, [float(n + i) for i in range(KEYS)], [1] * KEYS
        )
        events = (Event(10**15 + n, RunStarted(10**15 + n)), Event(1, ParamLogged("lr", str(n))))
        out.append(EventBatch(run_id, producer, n * 100_000, events, columns))
    return out


def test_the_compiled_clauses_name_the_keys_they_read() -> None:
    where = compile_filter("metrics.m00003 > 1 AND (params.lr = '2' OR status = 'x')")
    order = compile_order(["metrics.m00007 DESC", "start_time"])
    assert where.keys == {("metrics", "m00003"), ("params", "lr")}
    assert order.keys == {("metrics", "m00007")}


def test_state_tables_of_some_keys_hold_only_their_rows() -> None:
    states = fold(_batches()).values()
    some = state_tables(states, {("metrics", "m00003"), ("params", "lr"), ("tags", "none")})
    every = state_tables(states)
    assert every["metrics"].num_rows == 3 * KEYS
    assert some["metrics"].num_rows == 3 and some["params"].num_rows == 3
    assert some["tags"].num_rows == 0 and some["runs"].equals(every["runs"])
    assert sorted(some["metrics"]["value"].to_pylist()) == [3.0, 4.0, 5.0]


def test_search_of_a_wide_run_answers_as_over_every_row(tmp_path: Path) -> None:
    settings = Settings.resolve(f"file://{tmp_path}", environ={})
    write_log(settings, _batches())
    with QueryEngine.from_settings(settings) as engine:
        found = engine.search_runs("metrics.m00010 >= 11", ["metrics.m00002 ASC"])
        assert [run.run_id for run in found] == ["b", "c"]
        # the same over the whole views (sql registers every row)
        whole = engine.sql(
            "SELECT run_id FROM metrics WHERE key = 'm00010' AND value >= 11 ORDER BY run_id"
        )
        assert whole["run_id"].to_pylist() == ["b", "c"]
        run = found[0]
        assert isinstance(run.metrics, LatestMetrics) and len(run.metrics) == KEYS
        assert run.metrics["m00002"] == LatestMetric(3.0, 1, 1, 3.0, 3.0)
        assert "m19999" in run.metrics and "nope" not in run.metrics
        row = run_row(run, ["run_id", "metrics", "params"], whole=False)
        assert row["metrics"].endswith(f", +{KEYS - 10} more")
        assert row["metrics"].startswith("m00000=1, m00001=2,") and row["params"] == "lr=1"
