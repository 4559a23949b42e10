"""The compactor's Prometheus metrics and health checks.

Metrics (all ``runstream_compactor_*``)::

    records_total             event-log messages read
    points_total              metric points buffered
    dead_letters_total        messages refused by the contract's check (counted, not sent:
                              the processor dead-letters the same ones)
    files_total               metric files written
    merges_total              ended runs merged into one file
    commits_total             offset commits
    write_seconds             time to encode and write one metric file (histogram)
    buffered_points           points read but not yet handed to a write (backlog)
    open_buffers              runs with a buffer in memory
    writes_in_flight          writes handed to the writer threads, not yet landed
    assigned_partitions       event-log partitions this worker holds
    consumer_lag{partition}   the group's lag on the event log (high watermark - committed):
                              what is not yet safely in Parquet
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

PREFIX = "runstream_compactor"
_COUNTERS = {
    "records": "Event-log messages read",
    "points": "Metric points buffered",
    "skipped": "Messages refused by the contract's check",
    "files": "Metric files written",
    "merges": "Ended runs merged into one file",
    "commits": "Offset commits",
}
_NAMES = {"skipped": "dead_letters"}


class Watched(Protocol):
    """What the metrics read of a worker (:class:`runstream.compactor.worker.Compactor`):
    ``stats`` has an int attribute per counter (records, points, skipped, files, merges,
    commits)."""

    @property
    def stats(self) -> object: ...

    @property
    def failed(self) -> BaseException | None: ...

    @property
    def assigned(self) -> frozenset[int]: ...


class _StatsCollector(Collector):
    """The worker's :class:`Stats` counters, read at each scrape."""

    def __init__(self, stats: Callable[[], object | None]) -> None:
        self._stats = stats

    def describe(self) -> Iterable[Metric]:
        return [self._family(field, 0.0) for field in _COUNTERS]

    def collect(self) -> Iterable[Metric]:
        stats = self._stats()
        if stats is None:
            return []
        return [self._family(field, float(getattr(stats, field))) for field in _COUNTERS]

    @staticmethod
    def _family(field: str, value: float) -> CounterMetricFamily:
        name = f"{PREFIX}_{_NAMES.get(field, field)}"
        return CounterMetricFamily(name, _COUNTERS[field], value=value)


class CompactorMetrics:
    """The metrics of one compactor worker, in a registry of their own.

    Args:
        registry: where they are registered (None: a new one).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._worker: Watched | None = None
        self.registry.register(
            _StatsCollector(lambda: None if self._worker is None else self._worker.stats)
        )
        self.write_seconds = Histogram(
            f"{PREFIX}_write_seconds",
            "Seconds to encode and write one metric file (a part or a merge)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=self.registry,
        )
        self.buffered_points = Gauge(
            f"{PREFIX}_buffered_points",
            "Points read but not yet handed to a write",
            registry=self.registry,
        )
        self.open_buffers = Gauge(
            f"{PREFIX}_open_buffers", "Runs with a buffer in memory", registry=self.registry
        )
        self.writes_in_flight = Gauge(
            f"{PREFIX}_writes_in_flight",
            "Writes handed to the writer threads, not yet landed",
            registry=self.registry,
        )
        self.assigned_partitions = Gauge(
            f"{PREFIX}_assigned_partitions",
            "Event-log partitions this worker holds",
            registry=self.registry,
        )

    def watch(self, worker: Watched) -> None:
        """Report ``worker``'s counters and answer health checks about it."""
        self._worker = worker

    def observe_backlog(self, points: int, buffers: int, writes: int, assigned: int) -> None:
        """Set the backlog gauges (called by the worker's loop)."""
        self.buffered_points.set(points)
        self.open_buffers.set(buffers)
        self.writes_in_flight.set(writes)
        self.assigned_partitions.set(assigned)

    def live(self) -> str | None:
        """None while the worker has not failed; else the error that stopped it."""
        if self._worker is not None and self._worker.failed is not None:
            return f"failed: {self._worker.failed!r}"
        return None

    def ready(self) -> str | None:
        """None once the worker holds partitions; else why it is not ready."""
        problem = self.live()
        if problem is not None:
            return problem
        if self._worker is None or not self._worker.assigned:
            return "no partition assigned yet"
        return None
