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
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from runstream.contract import Codec, EventBatch, MetricLogged
from runstream.contract.columns import MetricArrays, apply_arrays, read_checked
from runstream.contract.deadletter import DeadLetter
from runstream.contract.state import RunState, apply_batch, merge
from runstream.core.locallog import read_log
from runstream.core.logsource import (
    COMPACTOR_GROUP,
    events_folder,
    positions_file,
    read_positions,
)
from runstream.core.settings import Settings
from runstream.core.source import Record, TopicReader, committed_offsets
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

    def read(
        self, start: Mapping[int, int], partitions: Collection[int] | None = None
    ) -> Iterator[Record]:
        """Every record from ``start`` (partition -> next offset; others from the beginning)
        up to the end seen when called; of ``partitions`` only, when given."""
        ...


class KafkaEventLog:
    """The events topic of a Kafka tracking URI (a long-lived :class:`TopicReader`)."""

    def __init__(self, settings: Settings, topic: str, timeout: float = 30.0) -> None:
        self.topic = topic
        self._reader = TopicReader(settings, topic, timeout)
        self._partitioner = str(settings.kafka.get("partitioner", "consistent_random"))
        self._count: int | None = None

    def read(
        self, start: Mapping[int, int], partitions: Collection[int] | None = None
    ) -> Iterator[Record]:
        """Records of the topic from ``start`` to the end offsets seen when called (of
        ``partitions`` only, when given).

        Raises:
            SourceError: the topic does not exist, or the broker does not answer in time.
        """
        return self._reader.read(start, partitions)

    def partitions_of(self, run_id: str) -> frozenset[int] | None:
        """The partition holding the events of ``run_id`` (see :func:`key_partition`), or
        None when it cannot be known (another partitioner is configured).

        Raises:
            SourceError: the topic does not exist, or the broker does not answer in time.
        """
        if self._partitioner not in _KEY_PARTITIONERS:
            return None
        if self._count is None:
            self._count = self._reader.partition_count()
        return frozenset({key_partition(run_id.encode("utf-8"), self._count)})

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


_KEY_PARTITIONERS = frozenset({"consistent_random", "consistent"})
"""librdkafka's partitioners that put a keyed message in CRC-32(key) mod partitions (the
default, ``consistent_random``, is what every Runstream producer uses unless
``RUNSTREAM_KAFKA_PARTITIONER`` says otherwise)."""


def key_partition(key: bytes, partitions: int) -> int:
    """The partition librdkafka's default partitioner gives a message keyed ``key`` (the
    producers key every batch by its run id): CRC-32 of the key modulo the partition count."""
    return zlib.crc32(key) % partitions


def committed_start(settings: Settings) -> dict[int, int]:
    """Where the query's tail starts: per partition, the position the compactor has
    committed (kafka://: its group's offsets; file://: the embedded compactor's positions
    file); {} for noop://.

    The compactor commits a partition only up to the first offset whose effect is not yet
    in the store (a point in an open buffer, a state change not in the run's snapshot, a
    write in flight): every record below is in a Parquet file and its run's snapshot.

    Raises:
        SourceError: the broker does not answer (or the topic does not exist).
        EmbeddedError: the positions file cannot be read.
    """
    topics = Topics(settings.topic_prefix)
    if settings.tracking_uri.scheme == "kafka":
        return committed_offsets(settings, topics.events, topics.compactor_group)
    if settings.tracking_uri.scheme == "file":
        return read_positions(positions_file(events_folder(settings), COMPACTOR_GROUP))
    return {}


class LocalEventLog:
    """The embedded mode's log folder (Avro container files, one per writing process)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def read(
        self, start: Mapping[int, int], partitions: Collection[int] | None = None
    ) -> Iterator[Record]:
        """Records of every log file from ``start`` (file number -> next record index); of
        the files numbered in ``partitions`` only, when given.

        Raises:
            LocalLogError: the folder or a file cannot be read.
        """
        if partitions is None:
            return read_log(self.folder, start)
        wanted = frozenset(partitions)
        return (r for r in read_log(self.folder, start) if r.partition in wanted)

    def __repr__(self) -> str:
        return f"LocalEventLog({str(self.folder)!r})"


class EmptyEventLog:
    """No events (the no-op mode)."""

    def read(
        self, start: Mapping[int, int], partitions: Collection[int] | None = None
    ) -> Iterator[Record]:
        """Nothing."""
        return iter(())


@dataclass
class _RunPoints:
    """One run's uncompacted points, a list of tables per metric key (each sorted by step
    when its points came in step order, which is the usual case)."""

    by_key: dict[str, list[pa.Table]] = field(default_factory=dict)

    def rows(self) -> int:
        return sum(table.num_rows for tables in self.by_key.values() for table in tables)

    def table(self, key: str | None) -> pa.Table:
        """The points of ``key`` (of every key when None), as one table of chunks."""
        keys = list(self.by_key) if key is None else [key]
        parts = [table for k in keys for table in self.by_key.get(k, ())]
        if not parts:
            return TAIL_SCHEMA.empty_table()
        return pa.concat_tables(parts) if len(parts) > 1 else parts[0]


_CHUNK_RECORDS = 5_000
_CHUNK_POINTS = 200_000
"""Records, or points, read before their decoded batches are turned into Arrow tables: a
refresh never holds every decoded batch at once, and messages of a few points (a run logging
at a steady pace) are not each turned into a table of their own (measured on 2-point
messages: 94 µs per message with tables every 50 records, most of it building them)."""


class Tail:
    """The run states folded from an event log, and each run's uncompacted metric points.

    Thread-safe: :meth:`refresh` and the readers hold one lock.

    With ``start`` the log is read per partition from the position it gives (the positions
    the compactor has committed: every record below them is in the store, see
    :func:`committed_start`) instead of the beginning; the states of what lies below come
    from ``base`` (:func:`runstream.query.stored.stored_states`: the store's run snapshots
    and its files' rollups), loaded once, when states are first asked for, and merged with
    the fold of what was read (the reducer is idempotent: an event both in the store and
    read again counts once). ``start`` is asked at the first refresh, ``base`` only after
    it, so the store answers at least up to the positions.

    Args:
        log: where events come from.
        codec: the message codec (one is built when None).
        start: partition -> first offset to read (None: every partition from the beginning).
        base: the states of every run as the store holds them (needed with ``start``).

    Raises:
        ValueError: ``start`` is given without ``base``.
    """

    def __init__(
        self,
        log: EventLog,
        codec: Codec | None = None,
        *,
        start: Callable[[], Mapping[int, int]] | None = None,
        base: Callable[[], Mapping[str, RunState]] | None = None,
    ) -> None:
        if start is not None and base is None:
            raise ValueError("a tail that starts past the beginning needs the stored states")
        self._log = log
        self._codec = codec or Codec()
        self._lock = threading.Lock()
        self._start = start
        self._base = base
        self._based = start is None  # whether self._states include what lies below the start
        self._started = start is None
        self._next: dict[int, int] = {}
        self._start_at: dict[int, int] = {}
        self._states: dict[str, RunState] = {}
        self._points: dict[str, _RunPoints] = {}
        self._seen: dict[str, frozenset[int]] = {}  # partitions each run was read from
        self._skipped = 0
        self._read_records = 0

    def refresh(self, partitions: Collection[int] | None = None) -> int:
        """Read every record appended since the last refresh (of ``partitions`` only, when
        given); return how many were read.

        Each record passes the readers' one check
        (:func:`runstream.contract.columns.read_checked`, the compactor's column decode); a
        refused one is counted in :attr:`skipped` and logged (the processor, or the
        embedded pipeline, dead-letters it), never raised. What was read before a failure
        of the log itself is kept.

        Raises:
            SourceError, LocalLogError, EmbeddedError: the log (or the positions) cannot be read.
        """
        with self._lock:
            self._begin()
            count = 0
            points = 0
            pending: dict[str, list[_Chunk]] = {}
            try:
                for record in self._log.read(self._next, partitions):
                    count += 1
                    self._next[record.partition] = record.offset + 1
                    points += self._take(record, pending)
                    if points >= _CHUNK_POINTS or count % _CHUNK_RECORDS == 0:
                        self._keep_points(pending)  # decoded batches become Arrow as we go
                        points = 0
            finally:  # keep the points of every record the positions have passed
                self._keep_points(pending)
                self._read_records += count
            return count

    @property
    def begun(self) -> bool:
        """Whether the start is taken (:meth:`begin` or a refresh did it)."""
        return self._started

    def begin(self) -> None:
        """Take the start (the compactor's committed positions) now if it is not taken yet;
        the first :meth:`refresh` does otherwise. A reader that lists the store takes it
        first: the store then holds at least everything below it.

        Raises:
            SourceError, EmbeddedError: the positions cannot be read.
        """
        with self._lock:
            self._begin()

    def _begin(self) -> None:
        if self._started:
            return
        assert self._start is not None
        self._next = {p: o for p, o in self._start().items() if o > 0}
        self._start_at = dict(self._next)
        self._started = True
        self._based = not self._next  # nothing skipped: the fold is whole
        logger.debug("tail of %r starts at %s", self._log, self._next)

    def _keep_points(self, pending: dict[str, list[_Chunk]]) -> None:
        for run_id, chunks in pending.items():
            held = self._points.setdefault(run_id, _RunPoints())
            for key, table in _points_tables(chunks).items():
                held.by_key.setdefault(key, []).append(table)
            if not held.by_key:
                del self._points[run_id]
        pending.clear()

    def _take(self, record: Record, pending: dict[str, list[_Chunk]]) -> int:
        """Fold one record into the states and queue its points; how many points."""
        read = read_checked(
            self._codec, repr(self._log), record.partition, record.offset, record.key, record.value
        )
        if isinstance(read, DeadLetter):
            self._skip(read.partition, read.offset, f"{read.reason}: {read.message}")
            return 0
        batch, arrays = read
        producer = batch.producer.id
        seen = self._seen.get(batch.run_id, frozenset())
        if record.partition not in seen:
            self._seen[batch.run_id] = seen | {record.partition}
        try:  # registers are maxima: a batch applied in part still leaves a valid state
            state = apply_batch(self._states.get(batch.run_id), batch)
            self._states[batch.run_id] = apply_arrays(
                state, producer, batch.columns_first_sequence, arrays
            )
        except Exception as error:  # a validated batch applies; never break a read on one
            self._skip(record.partition, record.offset, f"apply: {error!r}")
            return 0
        chunk = _chunk(record, batch, arrays)
        if chunk is None:
            return 0
        pending.setdefault(batch.run_id, []).append(chunk)
        return len(chunk.steps)

    def _skip(self, partition: int, offset: int, why: str) -> None:
        self._skipped += 1
        logger.warning(
            "skipping record at partition %d offset %d of %r: %s", partition, offset, self._log, why
        )

    def states(self) -> dict[str, RunState]:
        """Every run's state (deleted runs included, with ``is_deleted``), by run id.

        Raises:
            StoreReadError: the stored states cannot be read (the first time only).
        """
        with self._lock:
            if not self._based and self._started:
                self._merge_base()
            return dict(self._states)

    def _merge_base(self) -> None:
        """Fold the store's states (what lies below the start) into the states read."""
        assert self._base is not None
        stored = self._base()
        for run_id, state in stored.items():
            read = self._states.get(run_id)
            self._states[run_id] = state if read is None else merge(state, read)
        self._based = True
        logger.debug("tail: %d stored states merged", len(stored))

    def start(self) -> dict[int, int]:
        """Per partition, the first offset read (partitions left out: from the beginning);
        the start is taken at the first refresh."""
        with self._lock:
            return dict(self._start_at)

    def partitions_of(self, run_id: str) -> frozenset[int] | None:
        """The partitions of the log that can hold the events of ``run_id`` (None: any).

        Raises:
            SourceError: the log cannot be asked.
        """
        partitions_of = getattr(self._log, "partitions_of", None)
        keyed: frozenset[int] | None = None if partitions_of is None else partitions_of(run_id)
        if keyed is None:
            return None
        with self._lock:
            return keyed | self._seen.get(run_id, frozenset())

    def positions(self) -> dict[int, int]:
        """Per partition read so far, the next offset to read."""
        with self._lock:
            return dict(self._next)

    @property
    def records_read(self) -> int:
        """How many records this tail was handed by the log so far (all refreshes)."""
        return self._read_records

    def size(self) -> int:
        """How many uncompacted points are held."""
        with self._lock:
            return sum(held.rows() for held in self._points.values())

    def run_ids(self) -> list[str]:
        """The ids of every run with uncompacted points."""
        with self._lock:
            return list(self._points)

    def points(
        self, run_id: str, watermarks: Mapping[int, int], key: str | None = None
    ) -> pa.Table:
        """The points of ``run_id`` (of metric ``key`` only, when given) the store does not
        hold, given the greatest offset its files cover per partition (``watermarks``);
        older points are forgotten. Each key's points are in step order when they were
        logged in step order (the table may have several chunks)."""
        with self._lock:
            held = self._points.get(run_id)
            if held is None:
                return TAIL_SCHEMA.empty_table()
            if watermarks:
                for name in list(held.by_key) if key is None else [key]:
                    tables = held.by_key.get(name)
                    if tables is None:
                        continue
                    kept = [t for t in (_above(t, watermarks) for t in tables) if t.num_rows]
                    if kept:
                        held.by_key[name] = kept
                    else:
                        del held.by_key[name]
                if not held.by_key:
                    del self._points[run_id]
                    return TAIL_SCHEMA.empty_table()
            return held.table(key)

    def close(self) -> None:
        """Release the log's resources (a Kafka consumer)."""
        close = getattr(self._log, "close", None)
        if close is not None:
            close()

    @property
    def skipped(self) -> int:
        """How many records were refused so far (undecodable or invalid)."""
        return self._skipped


@dataclass(frozen=True, slots=True)
class _Chunk:
    """The metric points of one record, as columns (point events and column points)."""

    keys: list[str]
    key_index: npt.NDArray[np.int32]
    steps: npt.NDArray[np.int64]
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    producer: str
    sequences: npt.NDArray[np.int64]
    partition: int
    offset: int


def _chunk(record: Record, batch: EventBatch, arrays: MetricArrays) -> _Chunk | None:
    """The points of one record (None if it has none)."""
    keys = list(arrays.keys)
    key_index = arrays.key_index.astype(np.int32, copy=False)
    steps, timestamps, values = arrays.steps, arrays.timestamps, arrays.values
    first = batch.columns_first_sequence
    sequences = np.arange(first, first + len(arrays), dtype=np.int64)
    events = [
        (sequence, event.payload)
        for sequence, event in batch.numbered_events()
        if isinstance(event.payload, MetricLogged)
    ]
    if events:  # points logged one by one (rare): appended as columns
        base = len(keys)
        keys.extend(point.key for _, point in events)
        key_index = np.concatenate([key_index, np.arange(base, len(keys), dtype=np.int32)])
        steps = np.concatenate([steps, np.array([p.step for _, p in events], np.int64)])
        timestamps = np.concatenate(
            [timestamps, np.array([p.timestamp for _, p in events], np.int64)]
        )
        values = np.concatenate([values, np.array([p.value for _, p in events], np.float64)])
        sequences = np.concatenate([sequences, np.array([s for s, _ in events], np.int64)])
    if len(steps) == 0:
        return None
    return _Chunk(
        keys,
        key_index,
        steps,
        timestamps,
        values,
        batch.producer.id,
        sequences,
        record.partition,
        record.offset,
    )


def _above(table: pa.Table, watermarks: Mapping[int, int]) -> pa.Table:
    """The rows of ``table`` past the greatest offset the store holds of their partition."""
    if not table.num_rows:
        return table
    partitions = table["partition"].to_numpy()
    limits = np.full(table.num_rows, -1, dtype=np.int64)
    for partition, last in watermarks.items():
        limits[partitions == partition] = last
    keep = table["offset"].to_numpy() > limits
    return table if keep.all() else table.filter(pa.array(keep))


def _points_tables(chunks: list[_Chunk]) -> dict[str, pa.Table]:
    """The points of ``chunks`` (one run's) as a :data:`TAIL_SCHEMA` table per metric key,
    each sorted by step (a stable sort, done only when the steps are out of order)."""
    names: dict[str, int] = {}
    codes = []
    for chunk in chunks:
        mapping = np.array([names.setdefault(key, len(names)) for key in chunk.keys], np.int32)
        codes.append(mapping[chunk.key_index] if len(mapping) else chunk.key_index)
    if not names:
        return {}
    sizes = [len(chunk.steps) for chunk in chunks]
    producers: dict[str, int] = {}
    producer_codes = np.repeat(
        np.array([producers.setdefault(c.producer, len(producers)) for c in chunks], np.int32),
        sizes,
    )
    key_codes = np.concatenate(codes)
    columns = {
        "step": np.concatenate([c.steps for c in chunks]),
        "timestamp": np.concatenate([c.timestamps for c in chunks]),
        "value": np.concatenate([c.values for c in chunks]),
        "producer": producer_codes,
        "sequence": np.concatenate([c.sequences for c in chunks]),
        "partition": np.repeat(np.array([c.partition for c in chunks], np.int64), sizes),
        "offset": np.repeat(np.array([c.offset for c in chunks], np.int64), sizes),
    }
    producer_strings = pa.array(list(producers), pa.string())
    tables = {}
    for key, code in names.items():
        rows = None if len(names) == 1 else np.flatnonzero(key_codes == code)
        part = columns if rows is None else {n: a[rows] for n, a in columns.items()}
        steps = part["step"]
        if len(steps) > 1 and not bool((steps[1:] >= steps[:-1]).all()):
            order = np.argsort(steps, kind="stable")
            part = {n: a[order] for n, a in part.items()}
        count = len(part["step"])
        if len(producers) == 1:
            producer = pa.repeat(producer_strings[0], count)
        else:
            producer = producer_strings.take(pa.array(part["producer"]))
        tables[key] = pa.table(
            [
                pa.repeat(pa.scalar(key, pa.string()), count),
                pa.array(part["step"]),
                pa.array(part["timestamp"]),
                pa.array(part["value"]),
                producer,
                pa.array(part["sequence"]),
                pa.array(part["partition"]),
                pa.array(part["offset"]),
            ],
            schema=TAIL_SCHEMA,
        )
    return tables
