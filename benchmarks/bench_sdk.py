"""SDK benchmark: caller-thread cost of ``log_metric`` and acknowledged points/s, Runstream
(Kafka, acks=all, idempotent) side by side with MLflow's ``log_metric`` on its sqlite store,
in one run on this machine. Prints figures and ratios.

Targets (DESIGN §8): median caller cost <= 2 µs; >= 300k acknowledged points/s from one
process.

Usage: python benchmarks/bench_sdk.py [--points 1000000] [--mlflow-points 2000]
       [--kafka 127.0.0.1:9092]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from runstream.core.kafka_admin import ensure_topics
from runstream.core.settings import Settings
from runstream.tracking import Client


def _median_call_ns(log_metric, calls: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Median and 99th percentile of single timed calls (ns)."""
    clock = time.perf_counter_ns
    samples = []
    for step in range(calls):
        start = clock()
        log_metric("loss", 0.5, step)
        samples.append(clock() - start)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


def bench_runstream(bootstrap: str, points: int, timed_calls: int, spill: Path) -> dict[str, float]:
    """Caller cost and acknowledged throughput of the SDK against Kafka."""
    settings = Settings.resolve(
        f"kafka://{bootstrap}", topic_prefix=f"bench-{uuid.uuid4().hex[:8]}", environ={}
    )
    ensure_topics(settings, partitions=3)
    client = Client(settings=settings, spill_dir=spill)
    run = client.start_run(run_name="bench", capture_code=False)
    run.log_metric("warmup", 0.0)
    client.flush(60.0)
    median_ns, p99_ns = _median_call_ns(run.log_metric, timed_calls)
    client.flush(120.0)

    log_metric = run.log_metric
    start = time.perf_counter()
    for step in range(points):
        log_metric("loss", 0.5, step)
    logged = time.perf_counter()
    client.flush(300.0)
    acked = time.perf_counter()
    run.end()
    client.close(60.0)
    return {
        "median_us": median_ns / 1000,
        "p99_us": p99_ns / 1000,
        "mean_us": (logged - start) / points * 1e6,
        "acked_per_s": points / (acked - start),
    }


def bench_mlflow(points: int, folder: Path) -> dict[str, float]:
    """Caller cost and throughput of MLflow's log_metric on a sqlite store (synchronous:
    a call returns once the point is committed, so every call is acknowledged)."""
    import mlflow

    logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    with mlflow.start_run():
        mlflow.log_metric("warmup", 0.0)
        median_ns, p99_ns = _median_call_ns(mlflow.log_metric, points)
        start = time.perf_counter()
        for step in range(points):
            mlflow.log_metric("loss", 0.5, step=step)
        elapsed = time.perf_counter() - start
    return {
        "median_us": median_ns / 1000,
        "p99_us": p99_ns / 1000,
        "mean_us": elapsed / points * 1e6,
        "acked_per_s": points / elapsed,
    }


def main() -> None:
    """Run both, print a table and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--timed-calls", type=int, default=200_000)
    parser.add_argument("--mlflow-points", type=int, default=2_000)
    parser.add_argument("--kafka", default="127.0.0.1:9092")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ours = bench_runstream(args.kafka, args.points, args.timed_calls, Path(tmp) / "spill")
        theirs = bench_mlflow(args.mlflow_points, Path(tmp))
    print(f"{'log_metric':<34}{'Runstream (Kafka)':>20}{'MLflow (sqlite)':>18}{'ratio':>10}")
    rows = [
        ("caller cost, median (µs)", "median_us", True),
        ("caller cost, p99 (µs)", "p99_us", True),
        ("caller cost, mean (µs)", "mean_us", True),
        ("acknowledged points/s", "acked_per_s", False),
    ]
    for label, key, lower_is_better in rows:
        ratio = theirs[key] / ours[key] if lower_is_better else ours[key] / theirs[key]
        print(f"{label:<34}{ours[key]:>20,.2f}{theirs[key]:>18,.2f}{ratio:>9,.0f}x")
    print(
        f"targets: median <= 2 µs: {'met' if ours['median_us'] <= 2 else 'MISSED'}; "
        f">= 300k acknowledged points/s: {'met' if ours['acked_per_s'] >= 300_000 else 'MISSED'}"
        f" (Runstream: {args.points:,} points; MLflow: {args.mlflow_points:,} points)"
    )


if __name__ == "__main__":
    main()
