"""``runstream demo``: a small hyperparameter sweep of distributed training runs, end to end.

Each run of the sweep is trained (simulated) by several worker processes that all log to the
run's one id, as a data-parallel job does: rank 0 logs params, the loss curves, accuracy and
the learning rate; every rank logs its own throughput and gradient norm. Then the pipeline
runs (embedded: the compactor over the local log; Kafka: the compactor and the stream
processor over the topic), and the query layer prints the runs table and draws the curves.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click
from rich.console import Console

from runstream.core.settings import Settings

logger = logging.getLogger(__name__)

LEARNING_RATES = (3e-4, 1e-3, 3e-3, 1e-2)
BATCH_SIZES = (256, 512)


@dataclass(frozen=True)
class WorkerJob:
    """What one worker process of one run does."""

    tracking_uri: str
    store: str
    run_id: str
    run_name: str
    collection: str
    rank: int
    world_size: int
    steps: int
    learning_rate: float
    batch_size: int
    seed: int


def sweep(
    collection: str, runs: int, workers: int, steps: int, settings: Settings
) -> list[WorkerJob]:
    """The worker jobs of a sweep of ``runs`` runs, ``workers`` processes each."""
    jobs = []
    for index in range(runs):
        learning_rate = LEARNING_RATES[index % len(LEARNING_RATES)]
        batch_size = BATCH_SIZES[index % len(BATCH_SIZES)]
        run_id = f"{collection}-{index}"
        for rank in range(workers):
            jobs.append(
                WorkerJob(
                    str(settings.tracking_uri),
                    settings.store,
                    run_id,
                    f"lr={learning_rate:g}",
                    collection,
                    rank,
                    workers,
                    steps,
                    learning_rate,
                    batch_size,
                    index * 100 + rank,
                )
            )
    return jobs


def train(job: WorkerJob) -> int:
    """Simulate one worker's training loop, logging through the SDK; the points logged."""
    os.environ.update(RANK=str(job.rank), LOCAL_RANK=str(job.rank), WORLD_SIZE=str(job.world_size))
    import runstream.tracking as runstream

    client = runstream.Client(tracking_uri=job.tracking_uri)
    rng = random.Random(job.seed)
    speed = min(job.learning_rate / 1e-3, 3.0) ** 0.5  # faster descent with a larger lr ...
    floor = 0.08 + 0.6 * max(0.0, math.log10(job.learning_rate / 3e-3)) ** 2  # ... up to a point
    points = 0
    with client.start_run(
        run_id=job.run_id,
        run_name=job.run_name,
        collection=job.collection,
        tags={"sweep": job.collection, "model": "resnet-18"},
    ) as run:
        if job.rank == 0:
            run.log_params(
                {
                    "optimizer": {"name": "adamw", "lr": job.learning_rate, "weight_decay": 0.05},
                    "batch_size": job.batch_size,
                    "world_size": job.world_size,
                    "epochs": 10,
                }
            )
            run.log("training started", level="info", metadata={"steps": str(job.steps)})
        for step in range(job.steps):
            progress = step / job.steps
            if job.rank == 0:
                train_loss = floor + 2.2 * math.exp(-6 * speed * progress) + rng.gauss(0, 0.03)
                run.log_metrics(
                    {
                        "train/loss": train_loss,
                        "lr": job.learning_rate * 0.5 * (1 + math.cos(math.pi * progress)),
                    },
                    step=step,
                )
                points += 2
                if step % 10 == 0:
                    val_loss = (
                        floor * 1.1 + 2.0 * math.exp(-5.5 * speed * progress) + rng.gauss(0, 0.01)
                    )
                    run.log_metrics(
                        {
                            "val/loss": val_loss,
                            "val/accuracy": 1 - val_loss / 2.6,
                        },
                        step=step,
                    )
                    points += 2
            run.log_metrics(
                {
                    f"worker{job.rank}/samples_per_s": job.batch_size * (9.5 + rng.gauss(0, 0.4)),
                    f"worker{job.rank}/grad_norm": 3 * math.exp(-3 * progress)
                    + abs(rng.gauss(0, 0.2)),
                    f"worker{job.rank}/data_ms": 4 + abs(rng.gauss(0, 1.5)),
                    f"worker{job.rank}/gpu_mem_gb": 11.2
                    + 0.3 * math.sin(step / 50)
                    + rng.gauss(0, 0.05),
                },
                step=step,
            )
            points += 4
        if job.rank == 0:
            run.log("training finished", level="info")
    client.close()
    return points


def run_sweep(jobs: Sequence[WorkerJob]) -> int:
    """Run every worker job in its own process (all at once); the points logged."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes=len(jobs)) as pool:
        return sum(pool.map(train, jobs))


@click.command()
@click.option("--tracking-uri", default=None, help="file:///folder (default) or kafka://host:port.")
@click.option(
    "--store", default=None, help="s3://bucket/prefix or a folder (default: RUNSTREAM_STORE)."
)
@click.option(
    "--s3-endpoint", default=None, help="S3-compatible endpoint (default: RUNSTREAM_S3_ENDPOINT)."
)
@click.option("--runs", default=3, show_default=True, help="Runs in the sweep.")
@click.option("--workers", default=4, show_default=True, help="Worker processes per run.")
@click.option("--steps", default=5000, show_default=True, help="Training steps per run.")
@click.option(
    "--plot",
    "plot_path",
    default="runstream-demo.png",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the loss curves.",
)
def demo(
    tracking_uri: str | None,
    store: str | None,
    s3_endpoint: str | None,
    runs: int,
    workers: int,
    steps: int,
    plot_path: Path,
) -> None:
    """Simulate a sweep of distributed training runs, run the pipeline, show the results."""
    console = Console(width=max(Console().width, 110))
    settings = Settings.resolve(tracking_uri, store, s3_endpoint=s3_endpoint)
    collection = f"sweep-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    jobs = sweep(collection, runs, workers, steps, settings)
    console.print(
        f"[bold]Runstream demo[/] — {runs} runs x {workers} workers, tracking to "
        f"[cyan]{settings.tracking_uri}[/], store [cyan]{settings.store}[/]"
    )
    started = time.monotonic()
    if settings.tracking_uri.scheme == "kafka":
        from runstream.core.kafka_admin import ensure_topics

        ensure_topics(settings)
    points = run_sweep(jobs)
    console.print(
        f"logged {points:,} metric points from {len(jobs)} worker processes "
        f"in {time.monotonic() - started:.1f} s"
    )
    _run_pipeline(settings, console)
    _report(settings, collection, plot_path, console)


def _run_pipeline(settings: Settings, console: Console) -> None:
    started = time.monotonic()
    if settings.tracking_uri.scheme == "file":
        from runstream.apps.embedded import process

        result = process(settings)
        console.print(
            f"pipeline: {result.points:,} points compacted into Parquet "
            f"({result.files} files, {result.merges} merged) in {time.monotonic() - started:.1f} s"
        )
        return
    from runstream.apps.pipeline import drain

    drained = drain(settings)
    console.print(
        f"pipeline: stream processor published {drained.states} run states, compactor wrote "
        f"{drained.points:,} points into {drained.files} files in {time.monotonic() - started:.1f} s"
    )


def _report(settings: Settings, collection: str, plot_path: Path, console: Console) -> None:
    from rich.table import Table

    from runstream.query.engine import QueryEngine
    from runstream.query.plots import plot_histories

    engine = QueryEngine.from_settings(settings)
    try:
        quoted = collection.replace("'", "''")
        found = engine.search_runs(f"collection = '{quoted}'", order_by=["name"])
        counts = {
            row["run_id"]: row["points"]
            for row in engine.sql(
                "SELECT run_id, count(*) AS points FROM metric_history WHERE run_id IN "
                "(SELECT run_id FROM runs WHERE collection = ?) GROUP BY run_id",
                [collection],
            ).to_pylist()
        }
        table = Table(title=f"runs of {collection}")
        for column in ("run", "status", "lr", "batch", "best val/loss", "val/accuracy", "points"):
            table.add_column(column, justify="left" if column in ("run", "status") else "right")
        best = min(found, key=lambda r: r.metrics["val/loss"].min) if found else None
        histories = {}
        for run in found:
            val = run.metrics.get("val/loss")
            accuracy = run.metrics.get("val/accuracy")
            table.add_row(
                run.run_id,
                run.status or "",
                run.params.get("optimizer.lr", ""),
                run.params.get("batch_size", ""),
                f"{val.min:.4f}" if val else "-",
                f"{accuracy.value:.4f}" if accuracy else "-",
                f"{counts.get(run.run_id, 0):,}",
                style="bold green" if run is best else None,
            )
            histories[f"{run.name} ({run.run_id})"] = engine.get_metric_history(
                run.run_id, "train/loss", max_points=500
            )
        console.print(table)
        written = plot_histories(
            histories, plot_path, title=f"train/loss, {collection}", ylabel="train/loss"
        )
    finally:
        engine.close()
    if best is not None:
        console.print(f"best run: [bold green]{best.run_id}[/] ({best.name})")
    console.print(f"loss curves: [cyan]{written.resolve()}[/]")
    example = found[0].run_id if found else "RUN"
    console.print(
        "next: [bold]runstream runs[/] (every run), "
        f"[bold]runstream history {example} val/loss --plot val.png[/], "
        '[bold]runstream sql "SELECT * FROM runs"[/]'
    )
