"""MLflow drop-in benchmark, side by side in one run: ``mlflow.log_metric`` and
``MlflowClient.log_batch`` through Runstream's tracking-store plugin against MLflow's own
client floor (a store whose methods only append to a list), MLflow's file store and its sqlite
store; then ``get_metric_history`` of one long metric, Runstream's plugin against sqlite.

Targets (DESIGN §8, issue 15): ``mlflow.log_metric`` within 1 µs of the floor per call;
``log_batch`` of 1,000 metrics <= 2 µs per point; ``get_metric_history`` of 1M points >= 100x
faster than MLflow's sqlite store.

Every store gets the same client path (``MLFLOW_REGISTRY_URI`` is set for all of them, so the
fluent call does not probe for Spark twice per call, see notes/mlflow-plugin.md).

Usage: python benchmarks/bench_mlflow.py [--calls 20000] [--slow-calls 300]
       [--history-points 1000000] [--kafka 127.0.0.1:9092]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.store.tracking.abstract_store import AbstractStore
from mlflow.tracking._tracking_service.utils import _tracking_store_registry

TIMESTAMP = 1_700_000_000_000


class FloorStore(AbstractStore):
    """MLflow's client floor: ``log_metric`` and ``log_batch`` only append."""

    def __init__(self, store_uri: str | None = None, artifact_uri: str | None = None) -> None:
        super().__init__()
        self.points: list[Any] = []

    def log_metric(self, run_id: str, metric: Metric) -> None:
        self.points.append(metric)

    def log_batch(
        self, run_id: str, metrics: list[Any], params: list[Any], tags: list[Any]
    ) -> None:
        self.points.extend(metrics)

    def get_run(self, run_id: str) -> Any:  # the fluent API reads the run once at start
        from mlflow.entities import Run, RunData, RunInfo

        info = RunInfo(run_id, "0", "", "RUNNING", TIMESTAMP, None, "active", "", "floor")
        return Run(info, RunData())


def median_us(call: Callable[[int], None], calls: int) -> float:
    """Median of single timed calls, µs."""
    clock = time.perf_counter_ns
    samples = []
    for step in range(calls):
        start = clock()
        call(step)
        samples.append(clock() - start)
    return statistics.median(samples) / 1000


def fluent_log_metric(uri: str, calls: int) -> float:
    """Median µs of ``mlflow.log_metric`` in an active run of ``uri``."""
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    if uri.startswith("floor"):
        run_id = uuid.uuid4().hex
        mlflow.tracking.fluent._active_run_stack.set([mlflow.ActiveRun(client.get_run(run_id))])
        try:
            return median_us(lambda step: mlflow.log_metric("loss", 0.5, step=step), calls)
        finally:
            mlflow.tracking.fluent._active_run_stack.set([])
    with mlflow.start_run():
        mlflow.log_metric("warmup", 0.0)
        return median_us(lambda step: mlflow.log_metric("loss", 0.5, step=step), calls)


def client_log_batch(uri: str, batches: int) -> float:
    """µs per point of ``MlflowClient.log_batch`` with 1,000 metrics per call (the median
    call: other processes on a shared machine make the mean noisy)."""
    client = MlflowClient(uri)
    run_id = uuid.uuid4().hex if uri.startswith("floor") else client.create_run("0").info.run_id
    metrics = [
        [Metric("m", float(i), TIMESTAMP, b * 1000 + i) for i in range(1000)]
        for b in range(batches)
    ]
    clock = time.perf_counter_ns
    samples = []
    for batch in metrics:
        start = clock()
        client.log_batch(run_id, metrics=batch)
        samples.append(clock() - start)
    return statistics.median(samples) / 1000 / 1000


def log_history(uri: str, points: int) -> str:
    """Log a ``points``-point metric ``h`` to a new run of ``uri`` (not timed); its run id."""
    client = MlflowClient(uri)
    run_id = client.create_run("0").info.run_id
    for first in range(0, points, 1000):
        batch = [
            Metric("h", float(i), TIMESTAMP, i) for i in range(first, min(points, first + 1000))
        ]
        client.log_batch(run_id, metrics=batch)
    client.set_terminated(run_id)
    return run_id


def read_history(store: AbstractStore, run_id: str) -> tuple[float, int]:
    """Seconds of one whole history read as ``MlflowClient.get_metric_history`` pages it
    (``max_results`` 25,000 and the page token, mlflow/tracking/_tracking_service/client.py),
    and how many points came back."""
    from mlflow.store.tracking import GET_METRIC_HISTORY_MAX_RESULTS

    start = time.perf_counter()
    history = store.get_metric_history(run_id, "h", GET_METRIC_HISTORY_MAX_RESULTS, None)
    token = history.token
    while token is not None:
        page = store.get_metric_history(run_id, "h", GET_METRIC_HISTORY_MAX_RESULTS, token)
        history.extend(page)
        token = page.token
    return time.perf_counter() - start, len(history)


def history_rounds(uris: dict[str, str], points: int, rounds: int) -> None:
    """``get_metric_history`` of one long metric: MLflow's sqlite store against Runstream's
    plugin, its points first in the event log's tail (no compactor ran: the query layer
    decodes them from the log), then in Parquet (after the embedded compactor); each warm
    (the store's query engine has read the log before) and cold (a new store: the engine
    reads the log, and the files, from scratch). Ratios are per round, sqlite's read of the
    round over Runstream's; rounds interleave so that load from other processes hits both."""
    from runstream.apps.embedded import process
    from runstream.mlflow.store import RunstreamStore

    ours_uri, sqlite_uri = uris["runstream+file"], uris["mlflow sqlite"]
    ours_id, sqlite_id = log_history(ours_uri, points), log_history(sqlite_uri, points)
    sqlite, warm = MlflowClient(sqlite_uri)._tracking_client.store, RunstreamStore(ours_uri)
    warm.get_metric_history(ours_id, "warm-up-key")  # the engine reads the log once
    ratios: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {}

    def record(name: str, took: tuple[float, int], theirs: float) -> None:
        assert took[1] == points, (name, took[1])
        seconds.setdefault(name, []).append(took[0])
        ratios.setdefault(name, []).append(theirs / took[0])

    sqlite_seconds = []
    for phase in ("tail", "parquet"):
        if phase == "parquet":
            warm.flush_async_logging()
            done = process(warm.settings)
            print(f"  (compacted {done.points:,} points into Parquet)")
            warm.get_metric_history(ours_id, "warm-up-key")
        for _ in range(rounds):
            theirs, got = read_history(sqlite, sqlite_id)
            assert got == points
            sqlite_seconds.append(theirs)
            record(f"{phase}, warm", read_history(warm, ours_id), theirs)
            record(f"{phase}, cold", read_history(RunstreamStore(ours_uri), ours_id), theirs)
    print(
        f"get_metric_history of {points:,} points, paged as MlflowClient pages "
        f"({rounds} rounds per phase):"
    )
    print(f"  mlflow sqlite           median {statistics.median(sqlite_seconds) * 1000:9.1f} ms")
    for name, values in seconds.items():
        spread = ratios[name]
        met = statistics.median(spread) >= 100
        print(
            f"  runstream {name:14s} median {statistics.median(values) * 1000:9.1f} ms   "
            f"{statistics.median(spread):6.1f}x faster (rounds {min(spread):.1f}-{max(spread):.1f}x;"
            f" target >= 100x -> {'met' if met else 'NOT met'})"
        )


def drop_topics(bootstrap: str, prefix: str) -> None:
    """Delete this run's own topics (the broker may be shared with others)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [n for n in admin.list_topics(timeout=10).topics if n.startswith(prefix + ".")]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            future.result(60)


def measure(args: argparse.Namespace, uris: dict[str, str]) -> None:
    """Every measurement, printed with its peers and target."""
    fluent = {}
    for name, uri in uris.items():
        calls = args.slow_calls if name.startswith("mlflow") else args.calls
        fluent[name] = fluent_log_metric(uri, calls)
    floor = fluent["floor (append only)"]
    print("mlflow.log_metric, median µs per call (same client path for every store):")
    for name, value in fluent.items():
        print(
            f"  {name:22s} {value:9.2f} µs   {value - floor:+8.2f} µs vs floor   {value / floor:7.2f}x floor"
        )
    met = fluent["runstream+file"] - floor <= 1
    print(f"  target: runstream within 1 µs of the floor -> {'met' if met else 'NOT met'}")

    names = [n for n in uris if n.startswith(("floor", "runstream"))]
    batch: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):  # interleaved: load from other processes hits every store
        for name in names:
            batch[name].append(client_log_batch(uris[name], args.batches))
    floors = batch["floor (append only)"]
    print(
        f"MlflowClient.log_batch of 1,000 metrics, µs per point (median call of "
        f"{args.batches}; median of {args.rounds} rounds, spread):"
    )
    for name, values in batch.items():
        extra = [v - f for v, f in zip(values, floors, strict=True)]
        print(
            f"  {name:22s} {statistics.median(values):7.3f} µs ({min(values):.3f}-{max(values):.3f})"
            f"   {statistics.median(extra):+7.3f} µs vs floor ({min(extra):+.3f} to {max(extra):+.3f})"
        )
    ours = statistics.median(batch["runstream+file"])
    print(f"  target: <= 2 µs per point -> {'met' if ours <= 2 else 'NOT met'}")

    history_rounds(uris, args.history_points, args.rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--slow-calls", type=int, default=300, help="calls on file/sqlite")
    parser.add_argument("--batches", type=int, default=200, help="log_batch calls of 1,000")
    parser.add_argument("--history-points", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every measurement")
    parser.add_argument("--kafka", default=None, help="also runstream+kafka://<this>")
    args = parser.parse_args()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    _tracking_store_registry.register("floor", FloorStore)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3.17 keeps it behind a flag
        os.environ["MLFLOW_REGISTRY_URI"] = f"sqlite:///{folder / 'registry.db'}"
        os.environ["RUNSTREAM_STORE"] = str(folder / "store")
        uris = {
            "floor (append only)": "floor://",
            "runstream+file": f"runstream+file://{folder / 'log'}",
            "mlflow file store": f"file://{folder / 'mlruns'}",
            "mlflow sqlite": f"sqlite:///{folder / 'mlflow.db'}",
        }
        if args.kafka:
            from runstream.core.kafka_admin import ensure_topics
            from runstream.core.settings import Settings

            os.environ["RUNSTREAM_TOPIC_PREFIX"] = prefix
            ensure_topics(Settings.resolve(f"kafka://{args.kafka}"), partitions=3)
            uris["runstream+kafka"] = f"runstream+kafka://{args.kafka}"
        try:
            measure(args, uris)
        finally:
            if args.kafka:
                drop_topics(args.kafka, prefix)


if __name__ == "__main__":
    main()
