"""PNG plots of metric histories, drawn with matplotlib's Agg canvas (no pyplot, no display,
no global figure state)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from runstream.query.exceptions import PlotError


def plot_histories(
    histories: Mapping[str, pa.Table], path: str | Path, *, title: str, ylabel: str
) -> Path:
    """Draw one curve per entry of ``histories`` (label -> table with ``step`` and ``value``,
    plus ``min``/``max`` when downsampled, drawn as a band) and write a PNG to ``path``.

    Raises:
        PlotError: nothing to draw, or the file cannot be written.
    """
    if not any(table.num_rows for table in histories.values()):
        raise PlotError(f"no points to plot into {path}")
    figure = Figure(figsize=(9, 5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, table in histories.items():
        if table.num_rows == 0:
            continue
        steps = table["step"].to_numpy()
        (line,) = axes.plot(steps, table["value"].to_numpy(), label=label, linewidth=1.2)
        if "min" in table.column_names and "max" in table.column_names:
            axes.fill_between(
                steps,
                table["min"].to_numpy(),
                table["max"].to_numpy(),
                color=line.get_color(),
                alpha=0.25,
                linewidth=0,
            )
    axes.set_title(title)
    axes.set_xlabel("step")
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    if len(histories) > 1:
        axes.legend(loc="best")
    figure.tight_layout()
    target = Path(path)
    try:
        figure.savefig(target, format="png")
    except OSError as error:
        raise PlotError(f"cannot write plot {target}: {error}") from error
    return target
