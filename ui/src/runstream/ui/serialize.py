"""Runs and metric histories as JSON-ready values.

JSON has no NaN or infinity: a non-finite scalar (a latest value, a min, a max) is written as
the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``; in a chart's columns it is ``null``
(a gap in the line).
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from runstream.query.runs import LatestMetric, Run

HISTORY_COLUMNS = ("first_step", "step", "timestamp", "value", "min", "max")


def number(value: float) -> float | str:
    """``value`` itself if finite, else ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def metric(latest: LatestMetric) -> dict[str, Any]:
    """A metric's latest point, min and max."""
    return {
        "value": number(latest.value),
        "step": latest.step,
        "timestamp": latest.timestamp,
        "min": number(latest.min),
        "max": number(latest.max),
    }


def run(value: Run) -> dict[str, Any]:
    """A run's attributes, params, tags, labels and latest metrics (times in µs)."""
    return {
        "run_id": value.run_id,
        "name": value.name,
        "collection": value.collection,
        "status": value.status,
        "start_time_us": value.start_time_us,
        "end_time_us": value.end_time_us,
        "params": dict(sorted(value.params.items())),
        "tags": dict(sorted(value.tags.items())),
        "labels": dict(sorted(value.labels.items())),
        "metrics": {key: metric(m) for key, m in sorted(value.metrics.items())},
    }


def history(table: pa.Table) -> dict[str, Any]:
    """A downsampled history (the engine's bucket columns) as parallel arrays; non-finite
    values become null. ``points`` is the row count, ``buckets_merged`` how many rows stand
    for more than one step."""
    columns: dict[str, Any] = {}
    for name in HISTORY_COLUMNS:
        column = table[name]
        if pa.types.is_floating(column.type):
            column = pc.if_else(pc.is_finite(column), column, pa.scalar(None, column.type))
        columns[name] = column.to_pylist()
    merged = 0
    if table.num_rows:
        merged = pc.sum(pc.not_equal(table["first_step"], table["step"])).as_py() or 0
    return {"points": table.num_rows, "buckets_merged": merged, **columns}
