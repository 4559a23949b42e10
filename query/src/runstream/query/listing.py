"""Listings on the command line: rows as a table, JSON or CSV, with the columns asked for.

A table written to a terminal folds long cells onto more lines (it never cuts them); written
to a pipe or a file it is plain aligned text, every cell whole, as wide as it needs. JSON is
one array of objects; CSV has a header row. Nothing is ever shortened.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

import click
from rich.console import Console
from rich.table import Table

OUTPUTS = ("table", "json", "csv")
NARROW_COLUMNS = 120
"""A terminal narrower than this gets a listing's narrow default columns."""

output_option = click.option(
    "--output",
    "-o",
    type=click.Choice(OUTPUTS),
    default="table",
    show_default=True,
    help="table (folded on a terminal, whole cells in a pipe), json or csv.",
)
columns_option = click.option(
    "--columns",
    default=None,
    help="Comma-separated columns to show (e.g. run_id,name,metrics.loss,params.lr).",
)


def parse_columns(text: str | None) -> list[str] | None:
    """The column names of ``--columns`` (None when not given).

    Raises:
        click.BadParameter: the list is empty.
    """
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise click.BadParameter("name at least one column", param_hint="--columns")
    return names


def terminal_width(stream: IO[str] | None = None) -> int | None:
    """The width of the terminal ``stream`` (stdout) writes to; None when it is no terminal."""
    out = stream or sys.stdout
    if not out.isatty():
        return None
    return shutil.get_terminal_size().columns


def default_columns(wide: Sequence[str], narrow: Sequence[str]) -> list[str]:
    """``narrow`` on a terminal narrower than :data:`NARROW_COLUMNS`, else ``wide``."""
    width = terminal_width()
    return list(narrow if width is not None and width < NARROW_COLUMNS else wide)


def cell(value: Any) -> str:
    """A value as one cell of text: mappings as ``k=v, ...``, floats in short form."""
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={cell(v)}" for k, v in sorted(value.items()))
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def emit(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    output: str,
    title: str | None = None,
    stream: IO[str] | None = None,
) -> None:
    """Write ``rows`` (only ``columns``, in that order; a missing column is empty) as
    ``output`` (table, json or csv) to ``stream`` (stdout)."""
    out = stream or sys.stdout
    picked = [{name: row.get(name) for name in columns} for row in rows]
    if output == "json":
        json.dump(picked, out, indent=2, default=str)
        out.write("\n")
    elif output == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows([cell(row[name]) for name in columns] for row in picked)
    elif terminal_width(out) is None:
        _plain_table(picked, columns, out)
    else:
        _terminal_table(picked, columns, title)


def _plain_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], out: IO[str]) -> None:
    cells = [[cell(row[name]) for name in columns] for row in rows]
    widths = [max([len(name), *(len(line[i]) for line in cells)]) for i, name in enumerate(columns)]
    for line in [list(columns), *cells]:
        out.write("  ".join(text.ljust(w) for text, w in zip(line, widths, strict=True)).rstrip())
        out.write("\n")


def _terminal_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str | None
) -> None:
    view = Table(title=title)
    for name in columns:
        view.add_column(name, overflow="fold")
    for row in rows:
        view.add_row(*(cell(row[name]) for name in columns))
    Console().print(view)
