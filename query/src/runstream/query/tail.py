"""The tail: what the event log holds that the Parquet files do not (yet).

:class:`Tail` follows an :class:`EventLog` (the Kafka events topic, or the embedded mode's
local log files) incrementally: each :meth:`Tail.refresh` reads the records appended since the
last one, folds every batch into the run states with the reducer, and keeps each run's metric
points with their position (partition, offset) and identity (producer id, sequence).

Points are dropped from memory once the store holds them: a run's files name the offsets they
cover, and a run's points of a partition at or below the greatest last offset of its files
there are in Parquet (the compactor writes a run's buffer whole and in offset order). A
partition-wide watermark would be wrong: runs sharing a partition are flushed at different
times. Readers still deduplicate on the identity (a re-sent event has a new offset).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runstream.contract import Codec, EventBatch, MetricLogged
from runstream.contract.deadletter import DeadLetter, read_message
from runstream.contract.state import RunState, apply_batch
from runstream.core.locallog import read_log
from runstream.core.logsource import events_folder
from runstream.core.settings import Settings
from runstream.core.source import Record, TopicReader
from runstream.core.topics import Topics

logger = logging.getLogger(__name__)

TAIL_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("step", pa.int64(), nullable=False),
        pa.field("timestamp", pa.int64(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("producer_id", pa.string(), nullable=False),
        pa.field("sequence", pa.int64(), nullable=False),
        pa.field("partition", pa.int64(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
    ]
)
"""One run's uncompacted points: the store's metric columns (partition widened to int64,
since a local log's file number is 63 bits)."""


class EventLog(Protocol):
    """An event log read from given positions up to its current end."""

    def read(self, start: Mapping[int, int]) -> Iterator[Record]:
        """Every record from ``start`` (partition -> next offset; others from the beginning)
        up to the end seen when called."""
        ...


class KafkaEventLog:
    """The events topic of a Kafka tracking URI (a long-lived :class:`TopicReader`)."""

    def __init__(self, settings: Settings, topic: str, timeout: float = 30.0) -> None:
        self.topic = topic
        self._reader = TopicReader(settings, topic, timeout)

    def read(self, start: Mapping[int, int]) -> Iterator[Record]:
        """Records of the topic from ``start`` to the end offsets seen when called.

        Raises:
            SourceError: the topic does not exist, or the broker does not answer in time.
        """
        return self._reader.read(start)

    def close(self) -> None:
        """Close the consumer."""
        self._reader.close()

    def __repr__(self) -> str:
        return f"KafkaEventLog({self.topic!r})"


def event_log(settings: Settings) -> EventLog:
    """The event log of a tracking URI: the events topic for kafka://, the local log folder
    for file://, nothing for noop://."""
    if settings.tracking_uri.scheme == "kafka":
        return KafkaEventLog(settings, Topics(settings.topic_prefix).events)
    if settings.tracking_uri.scheme == "file":
        return LocalEventLog(events_folder(settings))
    return EmptyEventLog()


class LocalEventLog:
    """The embedded mode's log folder (Avro container files, one per writing process)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def read(self, start: Mapping[int, int]) -> Iterator[Record]:
        """Records of every log file from ``start`` (file number -> next record index).

        Raises:
            LocalLogError: the folder or a file cannot be read.
        """
        return read_log(self.folder, start)

    def __repr__(self) -> str:
        return f"LocalEventLog({str(self.folder)!r})"


class EmptyEventLog:
    """No events (the no-op mode)."""

    def read(self, start: Mapping[int, int]) -> Iterator[Record]:
        """Nothing."""
        return iter(())


@dataclass
class _RunPoints:
    tables: list[pa.Table] = field(default_factory=list)

    def table(self) -> pa.Table:
        if not self.tables:
            return TAIL_SCHEMA.empty_table()
        if len(self.tables) > 1:
            self.tables = [pa.concat_tables(self.tables).combine_chunks()]
        return self.tables[0]


_CHUNK_RECORDS = 50
"""Records read before their decoded batches are turned into Arrow tables (a refresh over a
run of a million keys never holds every decoded batch at once)."""


class Tail:
    """The run states folded from an event log, and each run's uncompacted metric points.

    Thread-safe: :meth:`refresh` and the readers hold one lock.

    Args:
        log: where events come from.
        codec: the message codec (one is built when None).
    """

    def __init__(self, log: EventLog, codec: Codec | None = None) -> None:
        self._log = log
        self._codec = codec or Codec()
        self._lock = threading.Lock()
        self._next: dict[int, int] = {}
        self._states: dict[str, RunState] = {}
        self._points: dict[str, _RunPoints] = {}
        self._skipped = 0

    def refresh(self) -> int:
        """Read every record appended since the last refresh; return how many were read.

        Each record passes the readers' one check
        (:func:`runstream.contract.deadletter.read_message`); a refused one is counted in
        :attr:`skipped` and logged (the processor, or the embedded pipeline, dead-letters
        it), never raised. What was read before a failure of the log itself is kept.

        Raises:
            SourceError, LocalLogError: the log cannot be read.
        """
        with self._lock:
            count = 0
            pending: dict[str, list[tuple[Record, EventBatch]]] = {}
            try:
                for record in self._log.read(self._next):
                    count += 1
                    self._next[record.partition] = record.offset + 1
                    self._take(record, pending)
                    if count % _CHUNK_RECORDS == 0:  # decoded batches become Arrow as we go
                        self._keep_points(pending)
            finally:  # keep the points of every record the positions have passed
                self._keep_points(pending)
            return count

    def _keep_points(self, pending: dict[str, list[tuple[Record, EventBatch]]]) -> None:
        for run_id, batches in pending.items():
            table = _points_table(batches)
            if table.num_rows:
                self._points.setdefault(run_id, _RunPoints()).tables.append(table)
        pending.clear()

    def _take(self, record: Record, pending: dict[str, list[tuple[Record, EventBatch]]]) -> None:
        read = read_message(
            self._codec, repr(self._log), record.partition, record.offset, record.key, record.value
        )
        if isinstance(read, DeadLetter):
            self._skip(read.partition, read.offset, f"{read.reason}: {read.message}")
            return
        try:  # registers are maxima: a batch applied in part still leaves a valid state
            self._states[read.run_id] = apply_batch(self._states.get(read.run_id), read)
        except Exception as error:  # a validated batch applies; never break a read on one
            self._skip(record.partition, record.offset, f"apply: {error!r}")
            return
        pending.setdefault(read.run_id, []).append((record, read))

    def _skip(self, partition: int, offset: int, why: str) -> None:
        self._skipped += 1
        logger.warning(
            "skipping record at partition %d offset %d of %r: %s", partition, offset, self._log, why
        )

    def states(self) -> dict[str, RunState]:
        """Every run's state (deleted runs included, with ``is_deleted``), by run id."""
        with self._lock:
            return dict(self._states)

    def size(self) -> int:
        """How many uncompacted points are held."""
        with self._lock:
            return sum(table.num_rows for held in self._points.values() for table in held.tables)

    def run_ids(self) -> list[str]:
        """The ids of every run with uncompacted points."""
        with self._lock:
            return list(self._points)

    def points(self, run_id: str, watermarks: Mapping[int, int]) -> pa.Table:
        """The points of ``run_id`` the store does not hold, given the greatest offset its
        files cover per partition (``watermarks``); older points are forgotten."""
        with self._lock:
            held = self._points.get(run_id)
            if held is None:
                return TAIL_SCHEMA.empty_table()
            table = held.table()
            if watermarks and table.num_rows:
                limits = np.full(table.num_rows, -1, dtype=np.int64)
                partitions = table["partition"].to_numpy()
                for partition, last in watermarks.items():
                    limits[partitions == partition] = last
                keep = table["offset"].to_numpy() > limits
                if not keep.all():
                    table = table.filter(pa.array(keep))
                    held.tables = [table]
            if table.num_rows == 0:
                del self._points[run_id]
            return table

    def close(self) -> None:
        """Release the log's resources (a Kafka consumer)."""
        close = getattr(self._log, "close", None)
        if close is not None:
            close()

    @property
    def skipped(self) -> int:
        """How many records were refused so far (undecodable or invalid)."""
        return self._skipped


def _points_table(batches: list[tuple[Record, EventBatch]]) -> pa.Table:
    keys: list[str] = []
    steps: list[int] = []
    timestamps: list[int] = []
    values: list[float] = []
    producers: list[str] = []
    sequences: list[int] = []
    partitions: list[int] = []
    offsets: list[int] = []
    for record, batch in batches:
        producer = batch.producer.id
        before = len(steps)
        for sequence, event in batch.numbered_events():
            point = event.payload
            if isinstance(point, MetricLogged):
                keys.append(point.key)
                steps.append(point.step)
                timestamps.append(point.timestamp)
                values.append(point.value)
                sequences.append(sequence)
        columns = batch.metrics
        if columns.steps:
            names = columns.keys
            keys.extend(names[i] for i in columns.key_index)
            steps.extend(columns.steps)
            timestamps.extend(columns.timestamps)
            values.extend(columns.values)
            first = batch.columns_first_sequence
            sequences.extend(range(first, first + len(columns.steps)))
        added = len(steps) - before
        producers.extend([producer] * added)
        partitions.extend([record.partition] * added)
        offsets.extend([record.offset] * added)
    table = pa.table(
        [keys, steps, timestamps, values, producers, sequences, partitions, offsets],
        schema=TAIL_SCHEMA,
    )
    return table.sort_by([("key", "ascending"), ("step", "ascending")]) if table.num_rows else table


def filter_key(table: pa.Table, key: str) -> pa.Table:
    """The rows of ``table`` whose ``key`` column equals ``key``."""
    if table.num_rows == 0:
        return table
    return table.filter(pc.equal(table["key"], key))
