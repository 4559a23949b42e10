"""Runs as readers see them: plain values from the reducer's states, as objects and tables."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import pyarrow as pa

from runstream.contract.identifiers import is_entity_stream
from runstream.contract.state import MetricSummary, RunState
from runstream.query.artifacts import Artifact, artifacts_of

RUNS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("name", pa.string()),
        ("collection", pa.string()),
        ("status", pa.string()),
        ("start_time_us", pa.int64()),
        ("end_time_us", pa.int64()),
    ]
)
PAIRS_SCHEMA = pa.schema([("run_id", pa.string()), ("key", pa.string()), ("value", pa.string())])
METRICS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("key", pa.string()),
        ("value", pa.float64()),
        ("step", pa.int64()),
        ("timestamp", pa.int64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
    ]
)


@dataclass(frozen=True, slots=True)
class LatestMetric:
    """A metric key's latest point (by step, timestamp, producer, sequence), min and max."""

    value: float
    step: int
    timestamp: int
    min: float
    max: float


class LatestMetrics(Mapping[str, LatestMetric]):
    """A run's metrics, each key's :class:`LatestMetric` built when it is read: a run may
    have a million keys and a listing reads ten. Holds a copy of the reducer's key -> summary
    map, so no key comes or goes after it is made (a later refresh may still move a
    summary's values forward)."""

    __slots__ = ("_summaries",)

    def __init__(self, summaries: Mapping[str, MetricSummary]) -> None:
        self._summaries = dict(summaries)

    def __getitem__(self, key: str) -> LatestMetric:
        m = self._summaries[key]
        return LatestMetric(m.value, m.step, m.timestamp, m.min, m.max)

    def __iter__(self) -> Iterator[str]:
        return iter(self._summaries)

    def __len__(self) -> int:
        return len(self._summaries)

    def __contains__(self, key: object) -> bool:
        return key in self._summaries

    def __repr__(self) -> str:
        return f"LatestMetrics({len(self._summaries)} keys)"


@dataclass(frozen=True, slots=True)
class Run:
    """One run: attributes, params, tags, labels, latest metrics and artifacts (by path)."""

    run_id: str
    name: str | None = None
    collection: str | None = None
    status: str | None = None
    start_time_us: int | None = None
    end_time_us: int | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, LatestMetric] = field(default_factory=dict)
    artifacts: Mapping[str, Artifact] = field(default_factory=dict)


def run_from_state(state: RunState) -> Run:
    """The plain view of a reducer state (its metrics read on demand: :class:`LatestMetrics`)."""
    return Run(
        run_id=state.run_id,
        name=None if state.name is None else state.name.value,
        collection=None if state.collection is None else state.collection.value,
        status=state.status_value,
        start_time_us=state.start_time_us,
        end_time_us=state.end_time_us,
        params=state.params_dict(),
        tags=state.tags_dict(),
        labels=state.labels_dict(),
        metrics=LatestMetrics(state.metrics),
        artifacts=artifacts_of(state),
    )


def visible(states: Mapping[str, RunState], deleted: bool | None = False) -> list[RunState]:
    """The states of runs that are not deleted (``deleted`` False), deleted (True) or either
    (None), by run id; experiments' and logged models' streams are never runs."""
    return [
        states[run_id]
        for run_id in sorted(states)
        if not is_entity_stream(run_id)
        and (deleted is None or states[run_id].is_deleted == deleted)
    ]


def state_tables(
    states: Iterable[RunState], keys: Collection[tuple[str, str]] | None = None
) -> dict[str, pa.Table]:
    """The ``runs``, ``params``, ``tags``, ``labels`` and ``metrics`` tables of ``states``;
    with ``keys`` (``(table, key)`` pairs, as :class:`runstream.query.filters.Compiled`
    gives), only the rows of those keys: what a filter reads of a run with a million keys."""
    wanted: dict[str, list[str]] | None = None
    if keys is not None:
        wanted = {name: [] for name in ("params", "tags", "labels", "metrics")}
        for table, key in sorted(keys):
            if table in wanted:
                wanted[table].append(key)
    runs: list[dict[str, object]] = []
    pairs: dict[str, list[tuple[str, str, str]]] = {"params": [], "tags": [], "labels": []}
    metrics: list[tuple[str, str, float, int, int, float, float]] = []
    for state in states:
        run_id = state.run_id
        runs.append(
            {
                "run_id": run_id,
                "name": None if state.name is None else state.name.value,
                "collection": None if state.collection is None else state.collection.value,
                "status": state.status_value,
                "start_time_us": state.start_time_us,
                "end_time_us": state.end_time_us,
            }
        )
        for table, registers in (
            ("params", state.params),
            ("tags", state.tags),
            ("labels", state.labels),
        ):
            chosen = registers.items() if wanted is None else _chosen(registers, wanted[table])
            pairs[table].extend((run_id, k, r.value) for k, r in chosen)
        summaries = (
            state.metrics.items() if wanted is None else _chosen(state.metrics, wanted["metrics"])
        )
        metrics.extend(
            (run_id, k, m.value, m.step, m.timestamp, m.min, m.max) for k, m in summaries
        )
    tables = {"runs": pa.Table.from_pylist(runs, schema=RUNS_SCHEMA)}
    for name, rows in pairs.items():
        tables[name] = pa.Table.from_arrays(
            [pa.array(column, pa.string()) for column in _columns(rows, 3)], schema=PAIRS_SCHEMA
        )
    tables["metrics"] = pa.Table.from_arrays(
        [pa.array(c, t) for c, t in zip(_columns(metrics, 7), METRICS_SCHEMA.types, strict=True)],
        schema=METRICS_SCHEMA,
    )
    return tables


_T = TypeVar("_T")


def _chosen(entries: Mapping[str, _T], keys: Sequence[str]) -> list[tuple[str, _T]]:
    return [(key, entries[key]) for key in keys if key in entries]


def _columns(rows: Sequence[Sequence[object]], width: int) -> list[list[object]]:
    return (
        [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]
    )
