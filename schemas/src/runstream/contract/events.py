"""Typed events: the Python face of ``event_batch.v*.avsc`` (today: version 4).

A Kafka message carries one :class:`EventBatch`: the events of one run from one producer.
Metric points may travel as :class:`MetricColumns` (parallel arrays: about 4x cheaper to
encode than one record per point); :meth:`EventBatch.logical_events` yields every event,
column points expanded to :class:`MetricLogged`, each with its identity (producer id,
sequence).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from runstream.contract.codec import Codec
from runstream.contract.exceptions import DecodeError

BATCH_SCHEMA = "event_batch"
NAMESPACE = "dev.runstream"
RUN_STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")


@dataclass(frozen=True, slots=True)
class Producer:
    """Who wrote a batch: a random id per process, and where it ran."""

    id: str
    host: str
    pid: int
    rank: int | None = None
    local_rank: int | None = None
    world_size: int | None = None
    worker: str | None = None


@dataclass(frozen=True, slots=True)
class RunStarted:
    """A run (or one worker of it) started."""

    start_time_us: int
    name: str | None = None
    collection: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    source_file: str | None = None
    command: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    python_version: str | None = None
    packages: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ParamLogged:
    """A parameter; its value is kept as a string."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class MetricLogged:
    """One metric point; ``timestamp`` is milliseconds since the epoch."""

    key: str
    value: float
    step: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class TagSet:
    """A tag, or a label when ``namespace`` is ``labels``."""

    key: str
    value: str
    namespace: str = "tags"


@dataclass(frozen=True, slots=True)
class RunEnded:
    """The run ended with ``status`` (FINISHED, FAILED or KILLED)."""

    status: str
    end_time_us: int


@dataclass(frozen=True, slots=True)
class LogLine:
    """A log message of the run."""

    level: str
    message: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunUpdated:
    """The run was renamed or moved to another collection (None: unchanged)."""

    name: str | None = None
    collection: str | None = None


@dataclass(frozen=True, slots=True)
class RunDeleted:
    """The run was deleted."""

    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ArtifactLogged:
    """A file of the run, already stored (content-addressed) when this event is produced.

    ``path`` is its place among the run's artifacts (relative, ``/``-separated), ``uri``
    where its bytes are (``s3://bucket/key`` or ``file:///path``), ``size`` in bytes,
    ``sha256`` the hex digest of the bytes. Added in ``event_batch`` version 2.
    """

    path: str
    uri: str
    size: int = 0
    sha256: str = ""
    media_type: str = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The producer still has the run open; it beats every ``interval_ms``. Added in
    ``event_batch`` version 3 (see :mod:`runstream.contract.liveness`)."""

    interval_ms: int = 0


@dataclass(frozen=True, slots=True)
class RunRestored:
    """A deleted run was restored (MLflow's soft lifecycle: a deletion is not a purge).
    Added in ``event_batch`` version 4."""


@dataclass(frozen=True, slots=True)
class ExperimentCreated:
    """An experiment named ``name`` was created. Experiment events travel in the batches of
    the experiment's own stream id (see :func:`runstream.contract.identifiers.experiment_stream`),
    never in a run's. Added in ``event_batch`` version 4."""

    name: str


@dataclass(frozen=True, slots=True)
class ExperimentRenamed:
    """The experiment was renamed. Added in ``event_batch`` version 4."""

    name: str


@dataclass(frozen=True, slots=True)
class ExperimentDeleted:
    """The experiment was deleted (soft: it can be restored). Added in ``event_batch`` version 4."""


@dataclass(frozen=True, slots=True)
class ExperimentRestored:
    """A deleted experiment was restored. Added in ``event_batch`` version 4."""


@dataclass(frozen=True, slots=True)
class LoggedModelCreated:
    """An MLflow 3 logged model was created (its files are artifacts of its own stream, see
    :func:`runstream.contract.identifiers.model_stream`). Added in ``event_batch`` version 4."""

    name: str
    experiment_id: str
    source_run_id: str | None = None
    model_type: str | None = None


@dataclass(frozen=True, slots=True)
class LoggedModelFinalized:
    """A logged model's files are complete (``READY``) or failed. Added in ``event_batch`` version 4."""

    status: str


Payload = (
    RunStarted
    | ParamLogged
    | MetricLogged
    | TagSet
    | RunEnded
    | LogLine
    | RunUpdated
    | RunDeleted
    | ArtifactLogged
    | Heartbeat
    | RunRestored
    | ExperimentCreated
    | ExperimentRenamed
    | ExperimentDeleted
    | ExperimentRestored
    | LoggedModelCreated
    | LoggedModelFinalized
)
PAYLOAD_TYPES: dict[str, type[Any]] = {
    f"{NAMESPACE}.{cls.__name__}": cls
    for cls in (
        RunStarted,
        ParamLogged,
        MetricLogged,
        TagSet,
        RunEnded,
        LogLine,
        RunUpdated,
        RunDeleted,
        ArtifactLogged,
        Heartbeat,
        RunRestored,
        ExperimentCreated,
        ExperimentRenamed,
        ExperimentDeleted,
        ExperimentRestored,
        LoggedModelCreated,
        LoggedModelFinalized,
    )
}
_FIELDS: dict[type[Any], tuple[str, ...]] = {
    cls: tuple(f.name for f in fields(cls)) for cls in PAYLOAD_TYPES.values()
}


@dataclass(frozen=True, slots=True)
class Event:
    """One event: its time (µs since the epoch, from the producer) and its payload."""

    time_us: int
    payload: Payload


class EventId(NamedTuple):
    """An event's identity: unique, and ordered within a producer."""

    producer: str
    sequence: int


class LogicalEvent(NamedTuple):
    """One event of a batch with its identity, column points expanded."""

    id: EventId
    time_us: int
    payload: Payload


@dataclass(slots=True)
class MetricColumns:
    """Metric points as parallel arrays: point j is
    ``MetricLogged(keys[key_index[j]], values[j], steps[j], timestamps[j])``."""

    keys: list[str] = field(default_factory=list)
    key_index: list[int] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.steps)

    def points(self) -> Iterator[MetricLogged]:
        """Every point as a MetricLogged, in order."""
        keys = self.keys
        for index, step, value, timestamp in zip(
            self.key_index, self.steps, self.values, self.timestamps, strict=True
        ):
            yield MetricLogged(keys[index], value, step, timestamp)


@dataclass(frozen=True, slots=True)
class EventBatch:
    """One message: events of one run from one producer, with contiguous sequences."""

    run_id: str
    producer: Producer
    first_sequence: int
    events: tuple[Event, ...] = ()
    metrics: MetricColumns = field(default_factory=MetricColumns)

    def __len__(self) -> int:
        return len(self.events) + len(self.metrics)

    # The identity rule, the one place it is written: the events of a batch have the
    # sequences first_sequence, first_sequence + 1, ... in order, and its column points follow
    # them (column point j has columns_first_sequence + j). An identity is (producer id,
    # sequence); every reader deduplicates on it.

    def numbered_events(self) -> Iterator[tuple[int, Event]]:
        """Each event of :attr:`events` with its sequence, in order."""
        return enumerate(self.events, self.first_sequence)

    @property
    def columns_first_sequence(self) -> int:
        """The sequence of the first column point; the others follow it one by one."""
        return self.first_sequence + len(self.events)

    def logical_events(self) -> Iterator[LogicalEvent]:
        """Every event with its identity; column points follow the events, as MetricLogged
        with event time = their timestamp (ms) in µs."""
        producer = self.producer.id
        for sequence, event in self.numbered_events():
            yield LogicalEvent(EventId(producer, sequence), event.time_us, event.payload)
        for sequence, point in enumerate(self.metrics.points(), self.columns_first_sequence):
            yield LogicalEvent(EventId(producer, sequence), point.timestamp * 1000, point)

    def to_record(self) -> dict[str, Any]:
        """The Avro record of this batch (unions as (name, record) tuples)."""
        return {
            "run_id": self.run_id,
            "producer": {f.name: getattr(self.producer, f.name) for f in fields(Producer)},
            "first_sequence": self.first_sequence,
            "events": [
                {"time_us": e.time_us, "payload": _payload_record(e.payload)} for e in self.events
            ],
            "metrics": {
                "keys": self.metrics.keys,
                "key_index": self.metrics.key_index,
                "steps": self.metrics.steps,
                "values": self.metrics.values,
                "timestamps": self.metrics.timestamps,
            },
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> EventBatch:
        """Build a batch from its decoded Avro record.

        Raises:
            DecodeError: a payload is of a type this version does not know.
        """
        events = []
        for event in record["events"]:
            name, body = event["payload"]
            payload_type = PAYLOAD_TYPES.get(name)
            if payload_type is None:
                raise DecodeError(f"unknown event payload {name!r}", "body")
            events.append(Event(event["time_us"], payload_type(**body)))
        metrics = record["metrics"]
        return cls(
            run_id=record["run_id"],
            producer=Producer(**record["producer"]),
            first_sequence=record["first_sequence"],
            events=tuple(events),
            metrics=MetricColumns(
                metrics["keys"],
                metrics["key_index"],
                metrics["steps"],
                metrics["values"],
                metrics["timestamps"],
            ),
        )


def _payload_record(payload: Payload) -> tuple[str, dict[str, Any]]:
    cls = type(payload)
    return f"{NAMESPACE}.{cls.__name__}", {name: getattr(payload, name) for name in _FIELDS[cls]}


def encode_batch(codec: Codec, batch: EventBatch) -> bytes:
    """Encode ``batch`` as one message.

    Raises:
        EncodeError: a field does not fit the schema.
    """
    return codec.encode(BATCH_SCHEMA, batch.to_record())


def decode_batch(codec: Codec, data: bytes | None) -> EventBatch:
    """Decode one message into an EventBatch.

    Raises:
        DecodeError: the message has no value, or its bytes are not a valid batch of any
            known schema version.
    """
    name, record = codec.decode(data)
    if name != BATCH_SCHEMA:
        raise DecodeError(f"message is a {name!r}, not an {BATCH_SCHEMA!r}", "schema")
    try:
        return EventBatch.from_record(record)
    except (KeyError, TypeError, ValueError) as error:
        raise DecodeError(f"batch record is malformed: {error}", "body") from error
