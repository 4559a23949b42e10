"""Query latency from the S3 server, side by side with MLflow's get_metric_history (sqlite).

    .venv/bin/python benchmarks/bench_query.py [--points 1000000] [--big-points 10000000]

Writes one run's metric at the store layout as the compactor writes it (files of
--file-points rows, runstream.contract.parquet's encoding, each with its rollup), then times, cold (a
fresh engine per call, nothing cached: what a user sees after a restart; the process's imports
and connections warmed once) and warm: the full history (target <= 150 ms for 1M points), a
1,000-bucket downsample of --big-points (target <= 300 ms; also over files without rollups, a
store written before them), DuckDB reading the same files through s3fs registered as its
filesystem (the alternative read path), and MLflow's get_metric_history on a sqlite store
holding the same points. Prints medians and ratios against the target and MLflow.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from runstream.contract.layout import part_path, run_dir
from runstream.contract.parquet import METRIC_SCHEMA, encode, rollup_table
from runstream.core.filesystem import open_store
from runstream.core.settings import Settings
from runstream.query import QueryEngine
from runstream.query.tail import EmptyEventLog


def write_run(
    fs: object, root: str, run_id: str, points: int, file_points: int, rollups: bool = True
) -> None:
    """One metric ``loss`` of ``points`` steps, in files of ``file_points`` rows, written as
    the compactor writes them (its encoding, and each file's rollup in its footer unless
    not ``rollups``)."""
    rng = np.random.default_rng(0)
    for first in range(0, points, file_points):
        steps = np.arange(first, min(first + file_points, points), dtype=np.int64)
        n = len(steps)
        table = pa.table(
            {
                "key": pa.array(["loss"] * n).dictionary_encode().cast(pa.string()),
                "step": steps,
                "timestamp": steps + 1_700_000_000_000,
                "value": rng.random(n),
                "producer_id": pa.array(["p" * 32] * n),
                "sequence": steps,
                "partition": pa.array(np.zeros(n, np.int32)),
                "offset": steps // 1000,
            },
            schema=METRIC_SCHEMA,
        )
        path = part_path(root, run_id, 0, first // 1000, (first + n - 1) // 1000)
        rollup = rollup_table(table) if rollups else None
        fs.pipe_file(path, encode(table, rollup))  # type: ignore[attr-defined]


def timings(fn: Callable[[], object], repeat: int) -> tuple[float, float, object]:
    """(first call ms, median ms of the next ``repeat`` calls, the result)."""
    start = time.perf_counter()
    result = fn()
    first = (time.perf_counter() - start) * 1000
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times) * 1000, result


def mlflow_store(points: int, folder: Path) -> Callable[[], object]:
    """An MLflow sqlite store with the same points; returns a get_metric_history call."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    run = client.create_run(client.create_experiment("bench"))
    run_id = run.info.run_id
    client.log_metric(run_id, "loss", 0.0, step=0)  # let MLflow create its rows and indexes
    rng = np.random.default_rng(0)
    with sqlite3.connect(folder / "mlflow.db") as db:
        db.execute("DELETE FROM metrics WHERE run_uuid = ?", (run_id,))
        for first in range(0, points, 100_000):
            steps = range(first, min(first + 100_000, points))
            values = rng.random(len(steps))
            db.executemany(
                "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
                "VALUES ('loss', ?, ?, ?, ?, 0)",
                (
                    (float(v), 1_700_000_000_000 + s, run_id, s)
                    for s, v in zip(steps, values, strict=True)
                ),
            )
    return lambda: client.get_metric_history(run_id, "loss")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--big-points", type=int, default=10_000_000)
    parser.add_argument("--file-points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mlflow-big", action="store_true", help="also run MLflow on --big-points")
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "runstream")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "runstream-secret")
    prefix = f"bench-query-{uuid.uuid4().hex[:8]}"
    settings = Settings.resolve(
        "noop://",
        f"s3://{os.environ.get('RUNSTREAM_S3_BUCKET', 'runstream')}/{prefix}",
        s3_endpoint=os.environ.get("RUNSTREAM_S3_ENDPOINT", "http://127.0.0.1:8333"),
        environ={},
    )
    fs, root = open_store(settings)
    try:
        write_run(fs, root, "small", args.points, args.file_points)
        write_run(fs, root, "big", args.big_points, args.file_points)
        write_run(fs, root, "bare", args.big_points, args.file_points, rollups=False)

        def history(engine: QueryEngine) -> object:
            table = engine.get_metric_history("small", "loss")
            assert table.num_rows == args.points
            return table

        def downsample(run_id: str) -> Callable[[QueryEngine], object]:
            def call(engine: QueryEngine) -> object:
                table = engine.get_metric_history(run_id, "loss", max_points=1000)
                assert 0 < table.num_rows <= 1000
                return table

            return call

        with QueryEngine(EmptyEventLog(), fs, root) as engine:  # imports, DuckDB, s3fs warm
            downsample("big")(engine)
        full_cold = cold(fs, root, history, args.repeat)
        down_cold = cold(fs, root, downsample("big"), args.repeat)
        bare_cold = cold(fs, root, downsample("bare"), max(1, args.repeat // 2))
        with QueryEngine(EmptyEventLog(), fs, root) as engine:
            _, full_warm, _ = timings(lambda: history(engine), args.repeat)
            _, down_warm, _ = timings(lambda: downsample("big")(engine), args.repeat)
        import duckdb

        con = duckdb.connect()
        con.register_filesystem(fs)
        glob = f"s3://{run_dir(root, 'small')}/*.parquet"
        _, duck_ms, _ = timings(
            lambda: con.sql(
                f"SELECT step, timestamp, value FROM read_parquet('{glob}') WHERE key = 'loss' "
                "ORDER BY step, timestamp, producer_id, sequence"
            ).to_arrow_table(),
            args.repeat,
        )
        with tempfile.TemporaryDirectory() as folder:
            mlflow_history = mlflow_store(args.points, Path(folder))
            _, mlflow_ms, metrics = timings(mlflow_history, max(1, args.repeat // 2))
            assert len(metrics) == args.points  # type: ignore[arg-type]
        print(f"full history, {args.points:,} points from S3 (target <= {FULL_TARGET_MS:g} ms)")
        for name, ms in [
            ("runstream, cold (fresh engine)", full_cold),
            ("runstream, warm (files cached)", full_warm),
            ("duckdb + registered s3fs (alt.)", duck_ms),
            ("mlflow get_metric_history, sqlite", mlflow_ms),
        ]:
            report(name, ms, FULL_TARGET_MS, mlflow_ms)
        print(
            f"1,000-bucket downsample of {args.big_points:,} points "
            f"(target <= {DOWN_TARGET_MS:g} ms)"
        )
        scaled = mlflow_ms * args.big_points / args.points
        if args.mlflow_big:
            with tempfile.TemporaryDirectory() as folder:
                big = mlflow_store(args.big_points, Path(folder))
                _, scaled, _ = timings(big, 1)
            anchor = "mlflow full fetch (measured)"
        else:
            anchor = f"mlflow full fetch (scaled x{args.big_points / args.points:g})"
        for name, ms in [
            ("runstream, cold (fresh engine)", down_cold),
            ("runstream, warm (rollups cached)", down_warm),
            ("runstream, cold, files w/o rollups", bare_cold),
            (anchor, scaled),
        ]:
            report(name, ms, DOWN_TARGET_MS, scaled)
    finally:
        fs.rm(root, recursive=True)


FULL_TARGET_MS = 150.0
DOWN_TARGET_MS = 300.0


def cold(fs: object, root: str, call: Callable[[QueryEngine], object], repeat: int) -> float:
    """Median ms of ``call`` on a fresh engine (nothing cached: what a user sees after a
    restart), ``repeat`` times."""
    times = []
    for _ in range(repeat):
        with QueryEngine(EmptyEventLog(), fs, root) as engine:
            start = time.perf_counter()
            call(engine)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def report(name: str, ms: float, target_ms: float, mlflow_ms: float) -> None:
    """One figure with its ratios: to the target (<= 1 meets it) and MLflow's time to it."""
    verdict = "meets" if ms <= target_ms else "misses"
    print(
        f"  {name:36s} {ms:9.1f} ms   /target = {ms / target_ms:5.2f} ({verdict})"
        f"   mlflow / this = {mlflow_ms / ms:7.1f}x"
    )


if __name__ == "__main__":
    main()
