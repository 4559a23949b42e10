"""The processor's health checks: live until its event loop stops ticking, ready once it
holds partitions of the events topic."""

from __future__ import annotations

import time

from runstream.processor import metrics as processor_metrics
from runstream.processor.metrics import ProcessorMetrics


def test_live_until_the_loop_stops_ticking() -> None:
    metrics = ProcessorMetrics()
    assert metrics.live() is None  # before the first tick: a table recovery may be long
    metrics._ticked = time.monotonic()
    assert metrics.live() is None
    metrics._ticked = time.monotonic() - processor_metrics.STALL_SECONDS - 1
    problem = metrics.live()
    assert problem is not None and problem.startswith("event loop silent for")
    assert metrics.ready() == problem


def test_ready_once_partitions_are_assigned() -> None:
    metrics = ProcessorMetrics()
    assert metrics.ready() == "no partition assigned yet"
    metrics._assigned = 3
    assert metrics.ready() is None
