"""JSON shapes: non-finite values never reach JSON as NaN."""

from __future__ import annotations

import json
import math

import pyarrow as pa

from runstream.query.runs import LatestMetric, Run
from runstream.ui import serialize


def test_non_finite_scalars_become_strings() -> None:
    run = Run("r1", metrics={"loss": LatestMetric(math.nan, 3, 10, -math.inf, math.inf)})
    shaped = serialize.run(run)
    assert shaped["metrics"]["loss"] == {
        "value": "NaN",
        "step": 3,
        "timestamp": 10,
        "min": "-Infinity",
        "max": "Infinity",
    }
    json.dumps(shaped, allow_nan=False)


def test_history_columns_with_gaps_for_non_finite_values() -> None:
    table = pa.table(
        {
            "first_step": pa.array([0, 2], pa.int64()),
            "step": pa.array([1, 2], pa.int64()),
            "timestamp": pa.array([5, 6], pa.int64()),
            "value": [math.nan, 2.0],
            "min": [1.0, 2.0],
            "max": [math.inf, 2.0],
        }
    )
    shaped = serialize.history(table)
    assert shaped["points"] == 2 and shaped["buckets_merged"] == 1
    assert shaped["value"] == [None, 2.0] and shaped["max"] == [None, 2.0]
    json.dumps(shaped, allow_nan=False)
