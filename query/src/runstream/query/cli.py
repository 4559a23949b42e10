"""``runstream runs | history | compare | sql | artifacts``: the query layer on the command line.

Every listing takes ``--output table|json|csv`` and ``--columns`` (see
:mod:`runstream.query.listing`): cells are never cut, and a narrow terminal gets readable
default columns.
"""

from __future__ import annotations

import csv
import heapq
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import pyarrow as pa

from runstream.core.settings import Settings
from runstream.query.engine import QueryEngine
from runstream.query.listing import (
    cell,
    columns_option,
    default_columns,
    emit,
    output_option,
    parse_columns,
)
from runstream.query.plots import plot_histories
from runstream.query.runs import Run

DEFAULT_PLOT_POINTS = 2000
RUN_COLUMNS = ("run_id", "name", "collection", "status", "start", "end", "params", "metrics")
NARROW_RUN_COLUMNS = ("run_id", "name", "collection", "status", "start", "metrics")
ARTIFACT_COLUMNS = ("path", "size", "media_type", "sha256", "uri")

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


def _print_table(
    table: pa.Table,
    output: str = "table",
    columns: str | None = None,
    title: str | None = None,
) -> None:
    emit(table.to_pylist(), parse_columns(columns) or table.column_names, output, title)


def run_row(run: Run, columns: Sequence[str], whole: bool) -> dict[str, Any]:
    """The ``columns`` of one run in a listing: its attributes; ``params``, ``metrics``,
    ``tags`` and ``labels`` whole (``whole``, for JSON and CSV) or as a cell of their first
    :data:`CELL_ITEMS` items and a count of the rest (a table); and each key alone as
    ``params.<key>``, ``metrics.<key>`` and so on. Only the columns asked for are built, so a
    run with a million metric keys costs what its shown columns cost."""
    return {name: _run_value(run, name, whole) for name in columns}


def _run_value(run: Run, name: str, whole: bool) -> Any:
    attributes: dict[str, Any] = {
        "run_id": run.run_id,
        "name": run.name,
        "collection": run.collection,
        "status": run.status,
    }
    if name in attributes:
        return attributes[name]
    if name in ("start", "end"):
        return _time(run.start_time_us if name == "start" else run.end_time_us)
    kind, _, key = name.partition(".")
    if kind == "metrics":
        if key:
            metric = run.metrics.get(key)
            return None if metric is None else metric.value
        if whole:
            return {k: m.value for k, m in run.metrics.items()}
        return _cell(run.metrics, lambda m: cell(m.value))
    mapping = {"params": run.params, "tags": run.tags, "labels": run.labels}.get(kind)
    if mapping is None:
        return None
    if key:
        return mapping.get(key)
    if whole:
        return dict(mapping)
    return _cell(mapping, str)


CELL_ITEMS = 10
"""Params or metrics shown per run by ``runs`` (a run may have a million metric keys)."""

_V = TypeVar("_V")


def _cell(mapping: Mapping[str, _V], text: Callable[[_V], str]) -> str:
    """The :data:`CELL_ITEMS` least keys of ``mapping`` as ``key=value``, then how many more
    there are (only the shown values are read)."""
    shown = heapq.nsmallest(CELL_ITEMS, mapping)
    more = len(mapping) - len(shown)
    items = ", ".join(f"{k}={text(mapping[k])}" for k in shown)
    return items + (f", +{more} more" if more else "")


@click.command()
@click.argument("filter", required=False)
@click.option("--order-by", multiple=True, help="e.g. 'metrics.loss ASC' (repeatable).")
@click.option("--max-results", default=100, show_default=True, type=int)
@output_option
@columns_option
@_tracking
@_store
def runs(
    filter: str | None,
    order_by: tuple[str, ...],
    max_results: int,
    output: str,
    columns: str | None,
    tracking_uri: str | None,
    store: str | None,
) -> None:
    """List the runs matching FILTER (e.g. "params.lr > 0.01 AND status = 'FINISHED'")."""
    with _engine(tracking_uri, store) as engine:
        found = engine.search_runs(filter, order_by, max_results)
    chosen = parse_columns(columns)
    if chosen is None:
        chosen = (
            list(RUN_COLUMNS)
            if output != "table"
            else default_columns(RUN_COLUMNS, NARROW_RUN_COLUMNS)
        )
    rows = [run_row(run, chosen, whole=output != "table") for run in found]
    emit(rows, chosen, output, f"{len(found)} run(s)")


@click.command()
@click.argument("run_id")
@click.argument("key")
@click.option("--start-step", type=int, default=None)
@click.option("--end-step", type=int, default=None)
@click.option("--max-points", type=int, default=None, help="Downsample to this many buckets.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
@output_option
@columns_option
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
    output: str,
    columns: str | None,
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
        _print_table(table, output, columns, f"{run_id} {key}: {table.num_rows} point(s)")


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
@output_option
@columns_option
@_tracking
@_store
def sql(
    statement: str,
    params: tuple[str, ...],
    output: str,
    columns: str | None,
    tracking_uri: str | None,
    store: str | None,
) -> None:
    """Run a SQL STATEMENT over the views runs, params, tags, labels, metrics, metric_history."""
    with _engine(tracking_uri, store) as engine:
        _print_table(engine.sql(statement, list(params)), output, columns)


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
@output_option
@columns_option
@_tracking
@_store
def artifacts(
    run_id: str,
    path: str | None,
    destination: Path | None,
    output: str,
    columns: str | None,
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
    rows = [
        {
            "path": a.path,
            "size": a.size,
            "media_type": a.media_type,
            "sha256": a.sha256,
            "uri": a.uri,
        }
        for a in found
    ]
    chosen = parse_columns(columns) or list(ARTIFACT_COLUMNS)
    emit(rows, chosen, output, f"{run_id}: {len(found)} artifact(s)")
