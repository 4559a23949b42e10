"""The query layer: DuckDB over the Parquet store plus the live tail of the event log.

Start with :class:`QueryEngine` (``QueryEngine.from_settings(Settings.resolve())``):
``get_run``, ``search_runs`` (the filter language of :mod:`runstream.query.filters`),
``get_metric_history`` (exact, or downsampled to min/max/last buckets), ``list_artifacts``
and ``download_artifacts``,
``get_metrics_history``, ``stats`` and ``sql`` with bound parameters.
"""

from runstream.query.artifacts import Artifact
from runstream.query.engine import MetricStats, QueryEngine
from runstream.query.exceptions import (
    ArtifactNotFoundError,
    ArtifactReadError,
    FilterError,
    PlotError,
    QueryError,
    RunNotFoundError,
    SqlError,
    StoreReadError,
)
from runstream.query.filters import Compiled, compile_filter, compile_order
from runstream.query.runs import LatestMetric, Run
from runstream.query.tail import EventLog, KafkaEventLog, LocalEventLog, Tail

__all__ = [
    "Artifact",
    "ArtifactNotFoundError",
    "ArtifactReadError",
    "Compiled",
    "EventLog",
    "FilterError",
    "KafkaEventLog",
    "LatestMetric",
    "LocalEventLog",
    "MetricStats",
    "PlotError",
    "QueryEngine",
    "QueryError",
    "Run",
    "RunNotFoundError",
    "SqlError",
    "StoreReadError",
    "Tail",
    "compile_filter",
    "compile_order",
]
