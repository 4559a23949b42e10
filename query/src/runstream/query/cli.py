"""``runstream runs | history | compare | sql | artifacts``: the query layer on the command line."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from runstream.core.settings import Settings
from runstream.query.engine import QueryEngine
from runstream.query.plots import plot_histories

DEFAULT_PLOT_POINTS = 2000

_tracking = click.option(
    "--tracking-uri", default=None, help="Overrides RUNSTREAM_TRACKING_URI (kafka://host:port)."
)
_store = click.option(
    "--store", default=None, help="Overrides RUNSTREAM_STORE (s3://bucket/prefix)."
)


@contextmanager
def _engine(tracking_uri: str | None, store: str | None) -> Iterator[QueryEngine]:
    with QueryEngine.from_settings(Settings.resolve(tracking_uri, store)) as engine:
        yield engine


def _time(us: int | None) -> str:
    if us is None:
        return ""
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _print_table(table: pa.Table, title: str | None = None) -> None:
    view = Table(title=title)
    for name in table.column_names:
        view.add_column(name)
    for row in table.to_pylist():
        view.add_row(*("" if value is None else str(value) for value in row.values()))
    Console().print(view)


CELL_ITEMS = 10
"""Params or metrics shown per run by ``runs`` (a run may have a million metric keys)."""


def _cell(items: Iterable[str]) -> str:
    """The first :data:`CELL_ITEMS` items, then how many more there are."""
    shown: list[str] = []
    more = 0
    for item in items:
        if len(shown) < CELL_ITEMS:
            shown.append(item)
        else:
            more += 1
    return ", ".join(shown) + (f", +{more} more" if more else "")


@click.command()
@click.argument("filter", required=False)
@click.option("--order-by", multiple=True, help="e.g. 'metrics.loss ASC' (repeatable).")
@click.option("--max-results", default=100, show_default=True, type=int)
@_tracking
@_store
def runs(
    filter: str | None,
    order_by: tuple[str, ...],
    max_results: int,
    tracking_uri: str | None,
    store: str | None,
) -> None:
    """List the runs matching FILTER (e.g. "params.lr > 0.01 AND status = 'FINISHED'")."""
    with _engine(tracking_uri, store) as engine:
        found = engine.search_runs(filter, order_by, max_results)
    view = Table(title=f"{len(found)} run(s)")
    for name in ("run_id", "name", "collection", "status", "start", "end", "params", "metrics"):
        view.add_column(name)
    for run in found:
        view.add_row(
            run.run_id,
            run.name or "",
            run.collection or "",
            run.status or "",
            _time(run.start_time_us),
            _time(run.end_time_us),
            _cell(f"{k}={v}" for k, v in sorted(run.params.items())),
            _cell(f"{k}={m.value:.6g}" for k, m in sorted(run.metrics.items())),
        )
    Console().print(view)


@click.command()
@click.argument("run_id")
@click.argument("key")
@click.option("--start-step", type=int, default=None)
@click.option("--end-step", type=int, default=None)
@click.option("--max-points", type=int, default=None, help="Downsample to this many buckets.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
@_tracking
@_store
def history(
    run_id: str,
    key: str,
    start_step: int | None,
    end_step: int | None,
    max_points: int | None,
    csv_path: Path | None,
    plot_path: Path | None,
    tracking_uri: str | None,
    store: str | None,
) -> None:
    """The history of metric KEY of run RUN_ID: a table, a CSV file and/or a PNG plot."""
    with _engine(tracking_uri, store) as engine:
        table = engine.get_metric_history(
            run_id, key, start_step=start_step, end_step=end_step, max_points=max_points
        )
        if plot_path is not None:
            plotted = table
            if max_points is None and table.num_rows > DEFAULT_PLOT_POINTS:
                plotted = engine.get_metric_history(
                    run_id,
                    key,
                    start_step=start_step,
                    end_step=end_step,
                    max_points=DEFAULT_PLOT_POINTS,
                )
            plot_histories({run_id: plotted}, plot_path, title=f"{run_id}: {key}", ylabel=key)
            click.echo(f"wrote {plot_path}")
    if csv_path is not None:
        with csv_path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(table.column_names)
            writer.writerows(row.values() for row in table.to_pylist())
        click.echo(f"wrote {table.num_rows} rows to {csv_path}")
    if csv_path is None and plot_path is None:
        _print_table(table, f"{run_id} {key}: {table.num_rows} point(s)")


@click.command()
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--key", required=True, help="The metric to compare.")
@click.option("--plot", "plot_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--max-points", type=int, default=DEFAULT_PLOT_POINTS, show_default=True)
@_tracking
@_store
def compare(
    run_ids: tuple[str, ...],
    key: str,
    plot_path: Path,
    max_points: int,
    tracking_uri: str | None,
    store: str | None,
) -> None:
    """Plot metric KEY of several runs on one chart."""
    with _engine(tracking_uri, store) as engine:
        histories = {
            run_id: engine.get_metric_history(run_id, key, max_points=max_points)
            for run_id in run_ids
        }
    plot_histories(histories, plot_path, title=key, ylabel=key)
    click.echo(f"wrote {plot_path}")


@click.command()
@click.argument("statement")
@click.option("--param", "params", multiple=True, help="A value for the next ? placeholder.")
@_tracking
@_store
def sql(
    statement: str, params: tuple[str, ...], tracking_uri: str | None, store: str | None
) -> None:
    """Run a SQL STATEMENT over the views runs, params, tags, labels, metrics, metric_history."""
    with _engine(tracking_uri, store) as engine:
        _print_table(engine.sql(statement, list(params)))


@click.command()
@click.argument("run_id")
@click.argument("path", required=False)
@click.option(
    "--download",
    "destination",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Copy the artifacts (checked against their sha256) into this folder.",
)
@_tracking
@_store
def artifacts(
    run_id: str,
    path: str | None,
    destination: Path | None,
    tracking_uri: str | None,
    store: str | None,
) -> None:
    """List the artifacts of run RUN_ID (at PATH or under it), or download them."""
    with _engine(tracking_uri, store) as engine:
        found = engine.list_artifacts(run_id, path)
        if destination is not None:
            local = engine.download_artifacts(run_id, path, destination)
            click.echo(f"downloaded {len(found)} file(s) to {local}")
            return
    view = Table(title=f"{run_id}: {len(found)} artifact(s)")
    for name in ("path", "size", "media type", "sha256", "uri"):
        view.add_column(name)
    for artifact in found:
        view.add_row(
            artifact.path,
            str(artifact.size),
            artifact.media_type,
            artifact.sha256[:12],
            artifact.uri,
        )
    Console().print(view)
