"""``get_metric_history`` through the Runstream plugin against MLflow's own stores for the same
logged data: the same ``Metric`` objects, field by field (key, value, timestamp, step and the
MLflow 3 fields model_id, dataset_name, dataset_digest, run_id), with NaN, ±inf, negative steps
and several points at one step; read from the event log's tail and again after the real
compactor wrote the points to Parquet. And ``log_batch``'s column path: what it queues is what
a reader that is not the plugin (DuckDB over the compacted Parquet) finds."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.tracking._tracking_service.utils import _get_store

from runstream.apps.embedded import process
from runstream.core.settings import Settings

T0 = 1_700_000_000_000
SQLITE_MAX = 1.7976931348623157e308  # MLflow's SQL stores keep ±inf as ± the largest double


def points() -> list[Metric]:
    """The logged history: out-of-order steps, negative steps, NaN, ±inf, -0.0, several points
    at one step (other value, other timestamp) and a tiny and a huge value."""
    values = [0.5, math.nan, math.inf, -math.inf, -0.0, 1e-300, 1e300, 2.0, 3.0, 0.25]
    steps = [0, 1, 2, -3, -(2**40), 5, 2**40, 7, 7, 7]
    stamps = [T0 + i for i in range(len(values))]
    stamps[8] = stamps[7]  # same step and timestamp, another value
    return [Metric("loss", v, t, s) for v, t, s in zip(values, stamps, steps, strict=True)]


def fields(metric: Metric) -> dict[str, Any]:
    """Every property of the Metric (MLflow's own iteration), NaN made comparable."""
    row = dict(metric)
    if isinstance(row["value"], float) and math.isnan(row["value"]):
        row["value"] = "NaN"
    return row


def canonical(history: list[Metric]) -> list[dict[str, Any]]:
    """The rows in one order (MLflow's stores differ in order: sqlite sorts by timestamp,
    step, value; the file store keeps logging order; Runstream sorts by step, timestamp)."""
    return sorted(map(fields, history), key=lambda r: (r["timestamp"], r["step"], str(r["value"])))


def log_everywhere(clients: dict[str, MlflowClient]) -> dict[str, str]:
    """Log the same history to each store (in two batches and one log_metric); run ids."""
    runs = {}
    for store, client in clients.items():
        run_id = client.create_run("0").info.run_id
        logged = points()
        client.log_batch(run_id, metrics=logged[:6])
        client.log_batch(run_id, metrics=logged[6:9])
        last = logged[9]
        client.log_metric(run_id, last.key, last.value, last.timestamp, last.step)
        runs[store] = run_id
    return runs


@pytest.fixture
def clients(
    tracking_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, MlflowClient]]:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    yield {
        "runstream": MlflowClient(tracking_uri),
        "sqlite": MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}"),
        "file": MlflowClient(f"file://{tmp_path / 'mlruns'}"),
    }


def check_history(clients: dict[str, MlflowClient], runs: dict[str, str]) -> None:
    histories = {s: c.get_metric_history(runs[s], "loss") for s, c in clients.items()}
    ours = histories["runstream"]
    assert all(type(m) is Metric for m in ours)
    assert len(ours) == len(points())
    # Runstream's order: by step, then timestamp (then logging order)
    assert [(m.step, m.timestamp) for m in ours] == sorted((m.step, m.timestamp) for m in ours)
    # MLflow's file store keeps every value as logged: equal field by field, but for run_id,
    # which it fills and its SQL stores leave None (Runstream answers as the SQL stores)
    assert {m.run_id for m in histories["file"]} == {runs["file"]}
    assert {m.run_id for m in ours} == {None}
    file_history = [Metric(m.key, m.value, m.timestamp, m.step) for m in histories["file"]]
    assert canonical(ours) == canonical(file_history)
    # MLflow's sqlite store: equal field by field, its ±inf being ± the largest double
    as_sqlite = [
        Metric(
            m.key,
            math.copysign(SQLITE_MAX, m.value) if math.isinf(m.value) else m.value,
            m.timestamp,
            m.step,
        )
        for m in ours
    ]
    assert canonical(as_sqlite) == canonical(histories["sqlite"])
    # real Metric instances that compare equal (both ways) to MLflow's own, NaN aside
    theirs = {(m.timestamp, m.step, m.value): m for m in histories["sqlite"]}
    for mine in ours:
        if math.isfinite(mine.value):
            other = theirs[(mine.timestamp, mine.step, mine.value)]
            assert mine == other and other == mine and hash(mine) == hash(other)
    # -0.0 keeps its sign
    assert [math.copysign(1.0, m.value) for m in ours if m.value == 0] == [-1.0]


def test_history_equals_mlflows_stores_from_the_tail_and_from_parquet(
    clients: dict[str, MlflowClient], runstream_settings: Settings
) -> None:
    runs = log_everywhere(clients)
    check_history(clients, runs)  # the points are in the event log's tail
    store = _get_store(clients["runstream"].tracking_uri)
    store.flush_async_logging()
    assert process(runstream_settings).points == len(points())  # now in Parquet
    reader = store.client.reader()
    assert reader.get_metric_history(runs["runstream"], "loss").num_rows == len(points())
    assert reader._tail.points(runs["runstream"], {0: 10**9}).num_rows == 0  # tail forgot them
    check_history(clients, runs)


def test_history_pages_as_mlflows_client_asks(clients: dict[str, MlflowClient]) -> None:
    client = clients["runstream"]
    run_id = client.create_run("0").info.run_id
    for first in range(0, 2500, 1000):
        client.log_batch(
            run_id,
            metrics=[Metric("m", i / 7, T0 + i, i) for i in range(first, min(2500, first + 1000))],
        )
    store = _get_store(client.tracking_uri)
    pages, token = [], None
    while True:
        page = store.get_metric_history(run_id, "m", max_results=1000, page_token=token)
        pages.append(len(page))
        token = page.token
        if token is None:
            break
    assert pages == [1000, 1000, 500]
    assert [fields(m) for m in client.get_metric_history(run_id, "m")] == [
        fields(Metric("m", i / 7, T0 + i, i)) for i in range(2500)
    ]


def test_log_batch_columns_reach_parquet_and_keep_mlflows_refusals(
    clients: dict[str, MlflowClient], runstream_settings: Settings
) -> None:
    client = clients["runstream"]
    run_id = client.create_run("0").info.run_id
    batch = [Metric(f"k{i % 3}", float(i), T0 + i, i - 10) for i in range(1000)]
    client.log_batch(run_id, metrics=batch)
    # not plain floats: ints and numpy scalars, converted as MLflow's stores convert them
    np = pytest.importorskip("numpy")
    client.log_batch(
        run_id, metrics=[Metric("k0", 7, T0, 5000), Metric("k0", np.float32(0.5), T0, 5001)]
    )
    store = _get_store(client.tracking_uri)
    sqlite = clients["sqlite"]
    sqlite_run = sqlite.create_run("0").info.run_id
    sqlite_store = _get_store(sqlite.tracking_uri)
    refusals = [  # MLflow's sqlite store refuses each with the message Runstream must give
        [Metric("fine", 1.0, T0, 0), Metric("fine", "x", T0, 1)],
        [Metric("fine", 1.0, T0, 0), Metric("fine", True, T0, 1)],
        [Metric("fine", 1.0, T0, 0), Metric("fine", None, T0, 1)],
        [Metric("fine", 1.0, -1, 0)],
        [Metric("fine", 1.0, T0, "7")],
        [Metric("a" * 251, 1.0, T0, 0)],
        [Metric("fine", 1.0, T0, 0), Metric("../up", 1.0, T0, 0)],
        [Metric("bad\x00key", 1.0, T0, 0)],
    ]
    for metrics in refusals:
        with pytest.raises(MlflowException) as theirs:
            sqlite_store.log_batch(sqlite_run, metrics, [], [])
        with pytest.raises(MlflowException) as ours:
            store.log_batch(run_id, metrics, [], [])
        assert ours.value.error_code == theirs.value.error_code == "INVALID_PARAMETER_VALUE"
        assert ours.value.message == theirs.value.message
    with pytest.raises(MlflowException) as fractional:  # MLflow takes it; Runstream's SDK not
        store.log_batch(run_id, [Metric("fine", 1.0, T0, 0.5)], [], [])
    assert fractional.value.error_code == "INVALID_PARAMETER_VALUE"
    store.flush_async_logging()
    process(runstream_settings)
    metrics_dir = Path(runstream_settings.store) / "metrics" / f"run_id={run_id}"
    files = [str(p) for p in metrics_dir.rglob("*.parquet")]
    assert files
    rows = duckdb.sql(
        "SELECT key, step, value, timestamp FROM read_parquet($files) ORDER BY key, step",
        params={"files": files},
    ).fetchall()
    expected = sorted(
        [(m.key, m.step, m.value, m.timestamp) for m in batch]
        + [("k0", 5000, 7.0, T0), ("k0", 5001, 0.5, T0)]
    )
    assert rows == expected
