"""The reducer: the state of a run, last value wins. Pure Python, no faust or Kafka import.

Every attribute of :class:`RunState` is a register whose value is decided by a total order
on events, so applying events is commutative, associative and idempotent: any order, any
interleaving of partitions, any duplicate delivery gives the same state.

- ``name``, ``collection``, ``status``, ``params``, ``tags``, ``labels`` and ``source``
  (RunStarted's source_file, command, git_commit, git_dirty, python_version): the value
  with the greatest order key ``(event time µs, producer id, sequence)`` wins (ties, which a
  unique event identity rules out, go to the greater value). RunStarted sets status
  ``RUNNING`` and its name, collection and tags; RunUpdated sets name and collection; RunEnded
  sets status and :attr:`RunState.ended` (the winning RunEnded gives the end time).
- ``start_time_us``: the earliest ``RunStarted.start_time_us``.
- ``metrics``: per key, the point with the greatest ``(step, timestamp, producer id,
  sequence)`` (never decided by the value), plus the min and max value. NaN is ignored by
  min/max unless every value of the key is NaN; a zero min or max is stored as +0.0 so the
  sign of zero cannot depend on arrival order. The greatest step is the latest point's step.
- ``artifacts``: per artifact path, the ArtifactLogged with the greatest order key (ties go
  to the greater (uri, size, sha256, media type)).
- ``last_heard_us``: the greatest event time of any event but a metric point (points carry
  the caller's timestamps); ``heartbeats``: whether any Heartbeat was seen. Both feed the
  run's liveness (:mod:`runstream.contract.liveness`); Heartbeat changes nothing else.
- LogLine events do not change the state either; counts are not kept (not idempotent: the query
  layer counts deduplicated history).

RunDeleted semantics (decided here): a deletion is a register too (the greatest RunDeleted
by order key). The run *is deleted* while that deletion is greater than the greatest
RunStarted (:attr:`RunState.is_deleted`). Events that come after a deletion are still folded
into the registers (so the result cannot depend on arrival order), but they do not make the
run visible again; only a RunStarted with a greater order key than the deletion does, and
then the run reappears with every register it has (a run id is never reused for a
different run, so this is an undelete, not a fresh run). Deleted runs are published as
tombstones (a null value) on ``runstream.runs``; :func:`fold` returns them with
``is_deleted`` set, and readers skip them. A RunRestored (event_batch v4) revives like a
RunStarted (its order key joins :attr:`RunState.started`) without touching status or names.

Experiments (event_batch v4) are folded by the same registers under their own stream id
(:func:`runstream.contract.identifiers.experiment_stream`): ExperimentCreated revives and sets
the name (and the start time, from its event time), ExperimentRenamed sets the name,
ExperimentDeleted is a deletion and ExperimentRestored a revival; tags are TagSet events.
Logged models likewise under theirs: LoggedModelCreated revives and sets the name, the
collection (its experiment id) and the ``source`` registers ``source_run_id`` and
``model_type``; LoggedModelFinalized sets the status (READY, FAILED).

Ownership: :func:`apply_batch`, :func:`apply` and :func:`merge` update the state passed in
and return it (no copy on the hot path); keep a :meth:`RunState.copy` if you need the old one.
"""

from __future__ import annotations

import heapq
import math
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from runstream.contract.codec import Codec
from runstream.contract.events import (
    ArtifactLogged,
    EventBatch,
    ExperimentCreated,
    ExperimentDeleted,
    ExperimentRenamed,
    ExperimentRestored,
    Heartbeat,
    LoggedModelCreated,
    LoggedModelFinalized,
    LogicalEvent,
    LogLine,
    MetricColumns,
    MetricLogged,
    ParamLogged,
    Payload,
    RunDeleted,
    RunEnded,
    RunRestored,
    RunStarted,
    RunUpdated,
    TagSet,
)
from runstream.contract.exceptions import DecodeError, StateError
from runstream.contract.limits import (
    MAX_STATE_ARTIFACTS,
    MAX_STATE_METRIC_KEYS,
    MAX_STATE_PARAM_KEYS,
    MAX_STATE_TAG_KEYS,
    MAX_STATE_VALUE_BYTES,
)

STATE_SCHEMA = "run_state"
RUNNING = "RUNNING"
LABELS_NAMESPACE = "labels"
SOURCE_FIELDS = ("source_file", "command", "git_commit", "git_dirty", "python_version")

Order = tuple[int, str, int]
"""An event's order key: (event time µs, producer id, sequence)."""

_PACK = struct.Struct("<d").pack


class Register(NamedTuple):
    """A last-writer-wins string register: ``value`` as written by the event ``order``;
    ``cut`` when a state message cut the value to :data:`MAX_STATE_VALUE_BYTES`."""

    value: str
    order: Order
    cut: bool = False


class EndRegister(NamedTuple):
    """The winning RunEnded: its end time and order key."""

    end_time_us: int
    order: Order


class DeleteRegister(NamedTuple):
    """The greatest RunDeleted: its reason and order key."""

    reason: str | None
    order: Order


class ArtifactRegister(NamedTuple):
    """A stored file of the run, as written by the ArtifactLogged of order key ``order``."""

    uri: str
    size: int
    sha256: str
    media_type: str
    order: Order
    cut: bool = False

    @property
    def value(self) -> tuple[str, int, str, str]:
        """What the register holds, without its order key (the tie-breaker)."""
        return (self.uri, self.size, self.sha256, self.media_type)


@dataclass(slots=True, eq=False)
class MetricSummary:
    """One metric key: the latest point by (step, timestamp, producer, sequence), min, max.

    Equality compares floats bit for bit, so NaN equals NaN and -0.0 differs from 0.0.
    """

    value: float
    step: int
    timestamp: int
    producer: str
    sequence: int
    min: float
    max: float

    @property
    def last_step(self) -> int:
        """The greatest step logged for this key (the latest point's step)."""
        return self.step

    @property
    def order(self) -> tuple[int, int, str, int]:
        """The latest point's order key (step, timestamp, producer, sequence)."""
        return (self.step, self.timestamp, self.producer, self.sequence)

    def absorb(self, other: MetricSummary) -> None:
        """Fold ``other`` (a summary of the same key) into this one."""
        if other.order > self.order:
            self.value = other.value
            self.step = other.step
            self.timestamp = other.timestamp
            self.producer = other.producer
            self.sequence = other.sequence
        self.min = _fmin(self.min, other.min)
        self.max = _fmax(self.max, other.max)

    def copy(self) -> MetricSummary:
        """An independent copy."""
        return MetricSummary(
            self.value,
            self.step,
            self.timestamp,
            self.producer,
            self.sequence,
            self.min,
            self.max,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MetricSummary):
            return NotImplemented
        return (
            self.step == other.step
            and self.timestamp == other.timestamp
            and self.producer == other.producer
            and self.sequence == other.sequence
            and _PACK(self.value) == _PACK(other.value)
            and _PACK(self.min) == _PACK(other.min)
            and _PACK(self.max) == _PACK(other.max)
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(slots=True)
class RunState:
    """The state of one run: every attribute a register (see the module docstring)."""

    run_id: str
    name: Register | None = None
    collection: Register | None = None
    status: Register | None = None
    start_time_us: int | None = None
    ended: EndRegister | None = None
    started: Order | None = None
    deleted: DeleteRegister | None = None
    params: dict[str, Register] = field(default_factory=dict)
    tags: dict[str, Register] = field(default_factory=dict)
    labels: dict[str, Register] = field(default_factory=dict)
    source: dict[str, Register] = field(default_factory=dict)
    metrics: dict[str, MetricSummary] = field(default_factory=dict)
    artifacts: dict[str, ArtifactRegister] = field(default_factory=dict)
    metrics_truncated: bool = False
    params_truncated: bool = False
    tags_truncated: bool = False
    labels_truncated: bool = False
    artifacts_truncated: bool = False
    last_heard_us: int | None = None
    heartbeats: bool = False

    @property
    def is_deleted(self) -> bool:
        """True while the greatest deletion is greater than the greatest revival (RunStarted,
        RunRestored, ExperimentCreated, ExperimentRestored)."""
        return self.deleted is not None and (
            self.started is None or self.deleted.order > self.started
        )

    @property
    def end_time_us(self) -> int | None:
        """The end time of the winning RunEnded, or None if the run never ended."""
        return None if self.ended is None else self.ended.end_time_us

    @property
    def status_value(self) -> str | None:
        """The current status (RUNNING, FINISHED, FAILED, KILLED), or None if unknown."""
        return None if self.status is None else self.status.value

    def params_dict(self) -> dict[str, str]:
        """Params as plain ``key -> value``."""
        return {key: register.value for key, register in self.params.items()}

    def tags_dict(self) -> dict[str, str]:
        """Tags as plain ``key -> value``."""
        return {key: register.value for key, register in self.tags.items()}

    def labels_dict(self) -> dict[str, str]:
        """Labels as plain ``key -> value``."""
        return {key: register.value for key, register in self.labels.items()}

    def source_dict(self) -> dict[str, str]:
        """Source information (source_file, command, git_commit, ...) as plain ``key -> value``."""
        return {key: register.value for key, register in self.source.items()}

    def artifacts_dict(self) -> dict[str, dict[str, Any]]:
        """Artifacts as ``path -> {"uri", "size", "sha256", "media_type"}``."""
        return {
            path: {"uri": a.uri, "size": a.size, "sha256": a.sha256, "media_type": a.media_type}
            for path, a in self.artifacts.items()
        }

    def latest_metrics(self) -> dict[str, tuple[float, int, int]]:
        """Each metric key's latest point as ``key -> (value, step, timestamp ms)``."""
        return {key: (m.value, m.step, m.timestamp) for key, m in self.metrics.items()}

    def as_dict(self) -> dict[str, Any]:
        """The state as plain values (no order keys), for display and for readers."""
        return {
            "run_id": self.run_id,
            "name": None if self.name is None else self.name.value,
            "collection": None if self.collection is None else self.collection.value,
            "status": self.status_value,
            "start_time_us": self.start_time_us,
            "end_time_us": self.end_time_us,
            "deleted": self.is_deleted,
            "params": self.params_dict(),
            "tags": self.tags_dict(),
            "labels": self.labels_dict(),
            "source": self.source_dict(),
            "metrics": {
                key: {"value": m.value, "step": m.step, "timestamp": m.timestamp}
                | {"min": m.min, "max": m.max}
                for key, m in self.metrics.items()
            },
            "artifacts": self.artifacts_dict(),
        }

    def copy(self) -> RunState:
        """An independent copy (registers are immutable; dicts and summaries are copied)."""
        return RunState(
            self.run_id,
            self.name,
            self.collection,
            self.status,
            self.start_time_us,
            self.ended,
            self.started,
            self.deleted,
            dict(self.params),
            dict(self.tags),
            dict(self.labels),
            dict(self.source),
            {key: m.copy() for key, m in self.metrics.items()},
            dict(self.artifacts),
            self.metrics_truncated,
            self.params_truncated,
            self.tags_truncated,
            self.labels_truncated,
            self.artifacts_truncated,
            self.last_heard_us,
            self.heartbeats,
        )


def apply_batch(state: RunState | None, batch: EventBatch) -> RunState:
    """Fold every event of ``batch`` into ``state`` (a new state when None) and return it.

    Metric columns take a fast path: per key, the batch's best point and min/max are found
    first, then folded in once.

    Raises:
        StateError: ``state`` belongs to another run than ``batch``.
        IndexError, ValueError: the metric columns are inconsistent (validate first:
            :func:`runstream.contract.validation.validate_batch`).
    """
    if state is None:
        state = RunState(batch.run_id)
    elif state.run_id != batch.run_id:
        raise StateError(f"batch of run {batch.run_id!r} applied to the state of {state.run_id!r}")
    producer = batch.producer.id
    for sequence, event in batch.numbered_events():
        _apply_payload(state, (event.time_us, producer, sequence), event.payload)
    columns = batch.metrics
    if columns.steps:
        first = batch.columns_first_sequence
        _apply_columns(state, producer, first, columns.keys, columns.key_index, columns)
    return state


def apply(state: RunState | None, run_id: str, event: LogicalEvent) -> RunState:
    """Fold one event of run ``run_id`` into ``state`` (a new state when None); return it.

    Raises:
        StateError: ``state`` belongs to another run.
    """
    if state is None:
        state = RunState(run_id)
    elif state.run_id != run_id:
        raise StateError(f"event of run {run_id!r} applied to the state of {state.run_id!r}")
    _apply_payload(state, (event.time_us, event.id.producer, event.id.sequence), event.payload)
    return state


def merge(a: RunState, b: RunState) -> RunState:
    """Fold state ``b`` into ``a`` and return ``a``: the state of both event sets together.

    Raises:
        StateError: the states belong to different runs.
    """
    if a.run_id != b.run_id:
        raise StateError(f"cannot merge the state of {b.run_id!r} into {a.run_id!r}")
    a.name = _max_register(a.name, b.name)
    a.collection = _max_register(a.collection, b.collection)
    a.status = _max_register(a.status, b.status)
    if b.start_time_us is not None and (
        a.start_time_us is None or b.start_time_us < a.start_time_us
    ):
        a.start_time_us = b.start_time_us
    if b.ended is not None and (a.ended is None or _end_key(b.ended) > _end_key(a.ended)):
        a.ended = b.ended
    if b.started is not None and (a.started is None or b.started > a.started):
        a.started = b.started
    if b.deleted is not None and (
        a.deleted is None or _delete_key(b.deleted) > _delete_key(a.deleted)
    ):
        a.deleted = b.deleted
    for mine, theirs in (
        (a.params, b.params),
        (a.tags, b.tags),
        (a.labels, b.labels),
        (a.source, b.source),
    ):
        for key, register in theirs.items():
            mine[key] = _max_register(mine.get(key), register)  # type: ignore[assignment]
    for path, artifact in b.artifacts.items():
        _set_artifact(a.artifacts, path, artifact)
    for key, summary in b.metrics.items():
        current = a.metrics.get(key)
        if current is None:
            a.metrics[key] = summary.copy()
        else:
            current.absorb(summary)
    a.metrics_truncated = a.metrics_truncated or b.metrics_truncated
    a.params_truncated = a.params_truncated or b.params_truncated
    a.tags_truncated = a.tags_truncated or b.tags_truncated
    a.labels_truncated = a.labels_truncated or b.labels_truncated
    a.artifacts_truncated = a.artifacts_truncated or b.artifacts_truncated
    if b.last_heard_us is not None and (
        a.last_heard_us is None or b.last_heard_us > a.last_heard_us
    ):
        a.last_heard_us = b.last_heard_us
    a.heartbeats = a.heartbeats or b.heartbeats
    return a


def fold(batches: Iterable[EventBatch]) -> dict[str, RunState]:
    """The state of every run of ``batches`` (deleted runs included, with ``is_deleted``).

    Raises:
        IndexError, ValueError: a batch's metric columns are inconsistent.
    """
    states: dict[str, RunState] = {}
    for batch in batches:
        states[batch.run_id] = apply_batch(states.get(batch.run_id), batch)
    return states


def _max_register(current: Register | None, new: Register | None) -> Register | None:
    if new is None:
        return current
    if current is None or (new.order, new.value) > (current.order, current.value):
        return new
    return current


def _end_key(register: EndRegister) -> tuple[Order, int]:
    return (register.order, register.end_time_us)


def _delete_key(register: DeleteRegister) -> tuple[Order, str]:
    return (register.order, register.reason or "")


def _set(registers: dict[str, Register], key: str, value: str, order: Order) -> None:
    current = registers.get(key)
    if current is None or (order, value) > (current.order, current.value):
        registers[key] = Register(value, order)


def _set_artifact(artifacts: dict[str, ArtifactRegister], path: str, new: ArtifactRegister) -> None:
    current = artifacts.get(path)
    if current is None or (new.order, new.value) > (current.order, current.value):
        artifacts[path] = new


def _apply_payload(state: RunState, order: Order, payload: Payload) -> None:
    kind = type(payload)
    if kind is not MetricLogged and (state.last_heard_us is None or order[0] > state.last_heard_us):
        state.last_heard_us = order[0]
    if kind is ParamLogged:
        assert isinstance(payload, ParamLogged)
        _set(state.params, payload.key, payload.value, order)
    elif kind is MetricLogged:
        assert isinstance(payload, MetricLogged)
        _apply_point(state, payload, order)
    elif kind is TagSet:
        assert isinstance(payload, TagSet)
        target = state.labels if payload.namespace == LABELS_NAMESPACE else state.tags
        _set(target, payload.key, payload.value, order)
    elif kind is RunStarted:
        assert isinstance(payload, RunStarted)
        _apply_started(state, payload, order)
    elif kind is RunEnded:
        assert isinstance(payload, RunEnded)
        state.status = _max_register(state.status, Register(payload.status, order))
        ended = EndRegister(payload.end_time_us, order)
        if state.ended is None or _end_key(ended) > _end_key(state.ended):
            state.ended = ended
    elif kind is RunUpdated:
        assert isinstance(payload, RunUpdated)
        if payload.name is not None:
            state.name = _max_register(state.name, Register(payload.name, order))
        if payload.collection is not None:
            state.collection = _max_register(state.collection, Register(payload.collection, order))
    elif kind is RunDeleted or kind is ExperimentDeleted:
        deleted = DeleteRegister(getattr(payload, "reason", None), order)
        if state.deleted is None or _delete_key(deleted) > _delete_key(state.deleted):
            state.deleted = deleted
    elif kind is ArtifactLogged:
        assert isinstance(payload, ArtifactLogged)
        _set_artifact(
            state.artifacts,
            payload.path,
            ArtifactRegister(payload.uri, payload.size, payload.sha256, payload.media_type, order),
        )
    elif kind is Heartbeat:
        state.heartbeats = True
    elif kind is RunRestored or kind is ExperimentRestored:
        _revive(state, order)
    elif kind is ExperimentCreated or kind is ExperimentRenamed:
        assert isinstance(payload, ExperimentCreated | ExperimentRenamed)
        if kind is ExperimentCreated:
            _revive(state, order)
            if state.start_time_us is None or order[0] < state.start_time_us:
                state.start_time_us = order[0]
        state.name = _max_register(state.name, Register(payload.name, order))
    elif kind is LoggedModelCreated:
        assert isinstance(payload, LoggedModelCreated)
        _apply_model(state, payload, order)
    elif kind is LoggedModelFinalized:
        assert isinstance(payload, LoggedModelFinalized)
        state.status = _max_register(state.status, Register(payload.status, order))
    elif kind is not LogLine:
        raise StateError(f"run {state.run_id!r}: no rule for event payload {kind.__name__}")


def _revive(state: RunState, order: Order) -> None:
    if state.started is None or order > state.started:
        state.started = order


def _apply_model(state: RunState, payload: LoggedModelCreated, order: Order) -> None:
    _revive(state, order)
    if state.start_time_us is None or order[0] < state.start_time_us:
        state.start_time_us = order[0]
    state.name = _max_register(state.name, Register(payload.name, order))
    state.collection = _max_register(state.collection, Register(payload.experiment_id, order))
    for key in ("source_run_id", "model_type"):
        value = getattr(payload, key)
        if value is not None:
            _set(state.source, key, value, order)


def _apply_started(state: RunState, payload: RunStarted, order: Order) -> None:
    _revive(state, order)
    if state.start_time_us is None or payload.start_time_us < state.start_time_us:
        state.start_time_us = payload.start_time_us
    state.status = _max_register(state.status, Register(RUNNING, order))
    if payload.name is not None:
        state.name = _max_register(state.name, Register(payload.name, order))
    if payload.collection is not None:
        state.collection = _max_register(state.collection, Register(payload.collection, order))
    for key, value in payload.tags.items():
        _set(state.tags, key, value, order)
    for name in SOURCE_FIELDS:
        value = getattr(payload, name)
        if value is not None:
            _set(state.source, name, _source_text(value), order)


def _source_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _apply_point(state: RunState, point: MetricLogged, order: Order) -> None:
    value = point.value
    bound = math.nan if value != value else value + 0.0
    summary = MetricSummary(value, point.step, point.timestamp, order[1], order[2], bound, bound)
    current = state.metrics.get(point.key)
    if current is None:
        state.metrics[point.key] = summary
    else:
        current.absorb(summary)


def apply_columns(
    state: RunState, producer: str, first_sequence: int, columns: MetricColumns
) -> None:
    """Fold metric ``columns`` (point j numbered ``first_sequence + j`` by ``producer``) into
    ``state``, as :func:`apply_batch` folds a batch's columns.

    Raises:
        IndexError: a key index is out of range (validate first).
    """
    _apply_columns(state, producer, first_sequence, columns.keys, columns.key_index, columns)


def _apply_columns(
    state: RunState,
    producer: str,
    first_sequence: int,
    keys: list[str],
    key_index: list[int],
    columns: Any,
) -> None:
    # Per key, the batch's best point, min and max, accumulated in a summary of its own (one
    # object per key of the batch). Within a batch the producer is fixed and the sequence
    # grows with the index, so among equal (step, timestamp) the later point wins. NaN is
    # kept out of min and max (inf / -inf stand for "none yet").
    inf = math.inf
    best: list[MetricSummary | None] = [None] * len(keys)
    points = zip(key_index, columns.steps, columns.values, columns.timestamps, strict=True)
    for index, (k, step, value, timestamp) in enumerate(points):
        acc = best[k]
        if acc is None:
            bound = value if value == value else None
            best[k] = MetricSummary(
                value,
                step,
                timestamp,
                producer,
                first_sequence + index,
                inf if bound is None else bound,
                -inf if bound is None else bound,
            )
            continue
        if step > acc.step or (step == acc.step and timestamp >= acc.timestamp):
            acc.step = step
            acc.timestamp = timestamp
            acc.sequence = first_sequence + index
            acc.value = value
        if value < acc.min:
            acc.min = value
        if value > acc.max:
            acc.max = value
    metrics = state.metrics
    for k, summary in enumerate(best):
        if summary is None:
            continue
        if summary.min == inf and summary.max == -inf:  # every value was NaN
            summary.min = summary.max = math.nan
        else:  # -0.0 becomes +0.0 (x + 0.0 would make a new float of every bound)
            if summary.min == 0.0:
                summary.min = 0.0
            if summary.max == 0.0:
                summary.max = 0.0
        current = metrics.get(keys[k])
        if current is None:
            metrics[keys[k]] = summary
        else:
            current.absorb(summary)


def _fmin(a: float, b: float) -> float:
    if a != a:
        return b
    if b != b:
        return a
    return (a if a < b else b) + 0.0


def _fmax(a: float, b: float) -> float:
    if a != a:
        return b
    if b != b:
        return a
    return (a if a > b else b) + 0.0


# --- Avro: runstream/contract/avro/run_state.v*.avsc ----------------------------------------


def encode_state(codec: Codec, state: RunState, *, whole: bool = False) -> bytes:
    """Encode ``state`` as a ``run_state`` message. Map keys are written sorted, so equal
    states give equal bytes. The message is projected to fit Kafka (:func:`state_record`)
    unless ``whole``: then every key and whole value is written, for stores with no size
    limit (the compactor's snapshot, which must keep everything).

    Raises:
        EncodeError: a field does not fit the schema.
    """
    return codec.encode(STATE_SCHEMA, state_record(state, whole=whole))


def decode_state(codec: Codec, data: bytes) -> RunState:
    """Decode a ``run_state`` message (any released version).

    Raises:
        DecodeError: the bytes are not a run state of any known schema version.
    """
    name, record = codec.decode(data)
    if name != STATE_SCHEMA:
        raise DecodeError(f"message is a {name!r}, not a {STATE_SCHEMA!r}", "schema")
    try:
        return state_from_record(record)
    except (KeyError, TypeError, ValueError) as error:
        raise DecodeError(f"run state record is malformed: {error}", "body") from error


def state_record(state: RunState, *, whole: bool = False) -> dict[str, Any]:
    """The Avro record of ``state`` (maps sorted by key), projected to fit
    :data:`~runstream.contract.limits.MAX_STATE_BYTES` whatever the run holds: the least
    :data:`MAX_STATE_METRIC_KEYS` metric keys, :data:`MAX_STATE_PARAM_KEYS` params,
    :data:`MAX_STATE_TAG_KEYS` tags and labels and :data:`MAX_STATE_ARTIFACTS` artifact paths,
    each ``*_truncated`` when some were left out, and every string value cut to
    :data:`MAX_STATE_VALUE_BYTES` bytes (its register says ``cut``). Each step commutes with
    the reducer, so folding through this encoding gives the encoding of the whole fold.
    With ``whole``, nothing is left out or cut."""
    limit = _NO_LIMIT if whole else None
    metrics, metrics_truncated = _least(state.metrics, limit or MAX_STATE_METRIC_KEYS)
    params, params_truncated = _least(state.params, limit or MAX_STATE_PARAM_KEYS)
    tags, tags_truncated = _least(state.tags, limit or MAX_STATE_TAG_KEYS)
    labels, labels_truncated = _least(state.labels, limit or MAX_STATE_TAG_KEYS)
    artifacts, artifacts_truncated = _least(state.artifacts, limit or MAX_STATE_ARTIFACTS)
    cut = _whole_text if whole else cut_text
    return {
        "metrics_truncated": state.metrics_truncated or metrics_truncated,
        "params_truncated": state.params_truncated or params_truncated,
        "tags_truncated": state.tags_truncated or tags_truncated,
        "labels_truncated": state.labels_truncated or labels_truncated,
        "artifacts_truncated": state.artifacts_truncated or artifacts_truncated,
        "last_heard_us": state.last_heard_us,
        "heartbeats": state.heartbeats,
        "run_id": state.run_id,
        "name": _register_record(state.name, cut),
        "collection": _register_record(state.collection, cut),
        "status": _register_record(state.status, cut),
        "start_time_us": state.start_time_us,
        "ended": None
        if state.ended is None
        else {"end_time_us": state.ended.end_time_us, **_order_record(state.ended.order)},
        "started": None if state.started is None else _order_record(state.started),
        "deleted": None
        if state.deleted is None
        else {
            "reason": None if state.deleted.reason is None else cut(state.deleted.reason)[0],
            **_order_record(state.deleted.order),
        },
        "params": _registers_record(params, cut),
        "tags": _registers_record(tags, cut),
        "labels": _registers_record(labels, cut),
        "source": _registers_record(sorted(state.source.items()), cut),
        "metrics": {
            key: {
                "value": m.value,
                "step": m.step,
                "timestamp": m.timestamp,
                "producer": m.producer,
                "sequence": m.sequence,
                "min": m.min,
                "max": m.max,
            }
            for key, m in metrics
        },
        "artifacts": {path: _artifact_record(a, cut) for path, a in artifacts},
    }


def cut_text(text: str, limit: int = MAX_STATE_VALUE_BYTES) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` bytes of UTF-8 at a character boundary, and whether
    it was cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, False
    return data[:limit].decode("utf-8", "ignore"), True


_NO_LIMIT = 2**63
_Cut = Callable[[str], tuple[str, bool]]


def _whole_text(text: str) -> tuple[str, bool]:
    return text, False


_V = TypeVar("_V")


def _least(entries: Mapping[str, _V], limit: int) -> tuple[list[tuple[str, _V]], bool]:
    """The ``limit`` least entries by key, sorted, and whether some were left out."""
    if len(entries) <= limit:
        return sorted(entries.items()), False
    return heapq.nsmallest(limit, entries.items(), key=lambda item: item[0]), True


def _artifact_record(a: ArtifactRegister, cut: _Cut) -> dict[str, Any]:
    uri, uri_cut = cut(a.uri)
    sha256, sha_cut = cut(a.sha256)
    media_type, media_cut = cut(a.media_type)
    return {
        "uri": uri,
        "size": a.size,
        "sha256": sha256,
        "media_type": media_type,
        **_order_record(a.order),
        "cut": a.cut or uri_cut or sha_cut or media_cut,
    }


def state_from_record(record: Mapping[str, Any]) -> RunState:
    """Build a state from its decoded Avro record.

    Raises:
        KeyError, TypeError: the record lacks a field or has a wrong type.
    """
    ended = _unwrap(record["ended"])
    deleted = _unwrap(record["deleted"])
    started = _unwrap(record["started"])
    return RunState(
        run_id=record["run_id"],
        name=_register(record["name"]),
        collection=_register(record["collection"]),
        status=_register(record["status"]),
        start_time_us=record["start_time_us"],
        ended=None if ended is None else EndRegister(ended["end_time_us"], _order(ended)),
        started=None if started is None else _order(started),
        deleted=None if deleted is None else DeleteRegister(deleted["reason"], _order(deleted)),
        params=_registers(record["params"]),
        tags=_registers(record["tags"]),
        labels=_registers(record["labels"]),
        source=_registers(record["source"]),
        metrics={
            key: MetricSummary(
                m["value"],
                m["step"],
                m["timestamp"],
                m["producer"],
                m["sequence"],
                m["min"],
                m["max"],
            )
            for key, m in record["metrics"].items()
        },
        artifacts={
            path: ArtifactRegister(
                a["uri"],
                a["size"],
                a["sha256"],
                a["media_type"],
                _order(a),
                bool(a.get("cut", False)),
            )
            for path, a in record.get("artifacts", {}).items()
        },
        metrics_truncated=bool(record.get("metrics_truncated", False)),
        params_truncated=bool(record.get("params_truncated", False)),
        tags_truncated=bool(record.get("tags_truncated", False)),
        labels_truncated=bool(record.get("labels_truncated", False)),
        artifacts_truncated=bool(record.get("artifacts_truncated", False)),
        last_heard_us=record.get("last_heard_us"),
        heartbeats=bool(record.get("heartbeats", False)),
    )


def _order_record(order: Order) -> dict[str, Any]:
    return {"time_us": order[0], "producer": order[1], "sequence": order[2]}


def _order(record: Mapping[str, Any]) -> Order:
    return (record["time_us"], record["producer"], record["sequence"])


def _register_record(register: Register | None, cut: _Cut) -> dict[str, Any] | None:
    if register is None:
        return None
    value, was_cut = cut(register.value)
    return {"value": value, **_order_record(register.order), "cut": register.cut or was_cut}


def _registers_record(registers: Iterable[tuple[str, Register]], cut: _Cut) -> dict[str, Any]:
    return {key: _register_record(r, cut) for key, r in registers}


def _unwrap(record: Any) -> Any:
    """A nullable record decoded as (record name, record) by the codec: the record."""
    return record[1] if isinstance(record, tuple) else record


def _register(record: Any) -> Register | None:
    record = _unwrap(record)
    if record is None:
        return None
    return Register(record["value"], _order(record), bool(record.get("cut", False)))


def _registers(records: Mapping[str, Any]) -> dict[str, Register]:
    return {
        key: Register(r["value"], _order(r), bool(r.get("cut", False)))
        for key, r in records.items()
    }
