"""The compactor's loop: consume, buffer per run, write due buffers, merge ended runs, commit.

Due buffers are handed to a small pool of writer threads (:mod:`runstream.compactor.writes`): building
the sorted table, the Parquet encoding, the PUT, the snapshot and an ended run's merge run
there while the loop keeps reading and decoding. The tables written are kept in memory
(:mod:`runstream.compactor.cache`, within a row budget) so that the merge of an ended run reads back
only what it does not already hold.

Offsets are committed only after the files covering them are written: per partition, up to
the first offset still held by an open buffer or by a write in flight (or everything read
when there is none). A record counts as read only once it is wholly taken (buffered, or
skipped as undecodable): a failure while taking it (the store refusing, unreachable or hanging
while the run's files are listed) leaves the position before it. Once any error escapes the
worker's loop (a store failure, a stop that interrupts a write, a crash) the worker commits
nothing more, not even when its partitions are revoked as its source closes: what it holds
then is read again by the next worker. A crash anywhere loses nothing; after it the worker
re-reads from the committed offsets, and the identities already in the store (loaded when it
first meets a run, after that run's writes in flight have landed) keep every point in exactly
one file.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from runstream.compactor.buffer import BufferPolicy, RunBuffer, chunk_of
from runstream.compactor.cache import TableCache, WrittenFile
from runstream.compactor.exceptions import StoreAccessError, StoreWriteError
from runstream.compactor.metrics import CompactorMetrics
from runstream.compactor.snapshots import Snapshots
from runstream.compactor.store import Store
from runstream.compactor.writes import WriteQueue
from runstream.contract.codec import Codec
from runstream.contract.columns import read_checked
from runstream.contract.deadletter import DeadLetter
from runstream.contract.events import EventBatch, RunEnded
from runstream.contract.layout import (
    live_files,
    merged_name,
    parse_part_name,
    part_path,
    run_dir,
)
from runstream.contract.parquet import (
    PointChunk,
    combine_rollups,
    decode,
    encode,
    merge_tables,
    points_and_rollup,
    rollup_table,
)
from runstream.core.deadletters import DeadLetterSink
from runstream.core.source import EventSource, Record, SourceError

logger = logging.getLogger(__name__)

_OBSERVE_INTERVAL_S = 1.0  # the backlog gauges cost a pass over the buffers: once a second


@dataclass(frozen=True, slots=True)
class CompactorConfig:
    """How the compactor batches its work.

    Attributes:
        policy: when a run's buffer is written.
        poll_records: most records taken per poll.
        poll_timeout_s: longest wait for records per poll.
        commit_interval_s: at most one commit per this interval, unless a file was written.
        merge_ended_runs: merge a run's files into one once it has ended.
        write_threads: threads writing files in the background; 0 writes in the loop's
            own thread (synchronous).
        max_writes_in_flight: the loop waits while this many writes are unfinished.
        merge_cache_rows: rows of written tables kept in memory for merges (all runs).
    """

    policy: BufferPolicy = field(default_factory=BufferPolicy)
    poll_records: int = 1_000
    poll_timeout_s: float = 0.1
    commit_interval_s: float = 1.0
    merge_ended_runs: bool = True
    write_threads: int = 4
    max_writes_in_flight: int = 8
    merge_cache_rows: int = 2_000_000


@dataclass(slots=True)
class Stats:
    """Counters of one worker, for logs and benchmarks (``files`` and ``merges`` count
    writes that have landed)."""

    records: int = 0
    points: int = 0
    files: int = 0
    merges: int = 0
    skipped: int = 0
    commits: int = 0


class Compactor:
    """One compactor worker over an event source and a store.

    Args:
        source: the consumer-group member (or local log) to read; the caller closes it.
        store: the destination.
        codec: the message codec.
        config: batching settings.
        snapshots: writes run state snapshots; None to write metric files only.
        stop: set it to make :meth:`run` return (after a last flush and commit).
        dead_letters: where refused messages go; None to count them only (in Kafka mode the
            processor dead-letters the same messages).
        topic: the name of what is read, for dead letters' headers.
        metrics: where write latency and backlog are reported (None: nowhere).
    """

    def __init__(
        self,
        source: EventSource,
        store: Store,
        codec: Codec,
        config: CompactorConfig | None = None,
        snapshots: Snapshots | None = None,
        stop: threading.Event | None = None,
        dead_letters: DeadLetterSink | None = None,
        topic: str = "events",
        metrics: CompactorMetrics | None = None,
    ) -> None:
        self.source = source
        self.metrics = metrics
        self.dead_letters = dead_letters
        self.topic = topic
        self.store = store
        self.codec = codec
        self.config = config or CompactorConfig()
        self.snapshots = snapshots
        self.stop = stop or threading.Event()
        self.stats = Stats()
        self._stats_lock = threading.Lock()
        self._buffers: dict[tuple[int, str], RunBuffer] = {}
        self._position: dict[int, int] = {}
        self._committed: dict[int, int] = {}
        self._last_commit = 0.0
        self._observed = 0.0  # when the backlog gauges were last set
        self._failed: BaseException | None = None  # once set, nothing more is committed
        self._writes = WriteQueue(self.config.write_threads, self.config.max_writes_in_flight)
        self._cache = TableCache(
            self.config.merge_cache_rows if self.config.merge_ended_runs else 0
        )
        self.assigned: frozenset[int] = frozenset()
        on_revoke = getattr(source, "on_revoke", None)
        if callable(on_revoke):  # hand partitions over with their writes landed
            on_revoke(self._revoked)

    def run(self) -> Stats:
        """Work until ``stop`` is set; then write what is pending and commit it.

        Raises:
            SourceError: the source failed fatally.
            StoreAccessError: the store refused the credentials.
            CorruptPartError: a file to merge is not a metric file.
        """
        try:
            while not self.stop.is_set():
                try:
                    self.step()
                except StoreAccessError:
                    raise
                except StoreWriteError as error:  # only raised once stop is set
                    logger.warning("stopping with unwritten buffers: %s", error)
                    return self.stats
            try:
                self.flush(force=True)
            except StoreAccessError:
                raise
            except StoreWriteError as error:
                logger.warning("final flush failed, nothing more committed: %s", error)
            return self.stats
        finally:
            self.close()

    def step(self) -> int:
        """Poll once, buffer what came, start the writes of due buffers, commit what the
        finished writes cover; the number of records. Writes may still be in flight on
        return (see :meth:`drain`).

        Raises:
            SourceError: the source failed fatally.
            StoreWriteError: the store kept failing and ``stop`` was set.
            StoreAccessError: the store refused the credentials.
            CorruptPartError: a file to merge is not a metric file.
        """
        with self._failing():
            records = self.source.poll(self.config.poll_records, self.config.poll_timeout_s)
            self._drop_revoked()  # at once: the writes of a revoked partition land first
            now = time.monotonic()
            for record in records:
                self._take(record, now)
            self._drop_revoked()
            self._start_due(now, force=False)
            finished = self._writes.reap()
            self._commit(now, urgent=finished > 0)
            if self.metrics is not None and now - self._observed >= _OBSERVE_INTERVAL_S:
                self._observed = now
                self.metrics.observe_backlog(
                    sum(buffer.points for buffer in self._buffers.values()),
                    len(self._buffers),
                    self._writes.in_flight,
                    len(self.assigned),
                )
            return len(records)

    def flush(self, force: bool = False) -> None:
        """Write every due buffer (every pending one if ``force``), wait until every write
        has landed, then commit.

        Raises:
            StoreWriteError: the store kept failing and ``stop`` was set.
            StoreAccessError: the store refused the credentials.
            CorruptPartError: a file to merge is not a metric file.
        """
        with self._failing():
            self._start_due(time.monotonic(), force)
        self.drain()

    def drain(self) -> None:
        """Wait until every write in flight has landed, then commit what they cover.

        Raises:
            StoreWriteError: the store kept failing and ``stop`` was set.
            StoreAccessError: the store refused the credentials.
            CorruptPartError: a file to merge is not a metric file.
        """
        with self._failing():
            self._writes.join()
            self._commit(time.monotonic(), urgent=True)

    @property
    def failed(self) -> BaseException | None:
        """The error that escaped the worker's loop, after which it commits nothing; None
        while it is healthy."""
        return self._failed

    @contextlib.contextmanager
    def _failing(self) -> Iterator[None]:
        """Remember any error that escapes: the worker's buffers, positions and writes may
        then disagree (a record half taken, a buffer cleared for a write that never
        started), so no later commit (a revocation's included) may trust them."""
        try:
            yield
        except BaseException as error:
            if self._failed is None:
                logger.warning("compactor failed, committing nothing more: %r", error)
                self._failed = error
            raise

    def close(self) -> None:
        """Wait for the writes in flight (committing nothing more), then stop the writer
        threads. The worker must not be used afterwards."""
        self._writes.close()

    def _start_due(self, now: float, force: bool) -> None:
        for key, buffer in list(self._buffers.items()):
            if buffer.due(self.config.policy, now) or (force and buffer.pending):
                ended = buffer.ended  # _write clears it
                self._write(key, buffer)
                if ended or force:
                    del self._buffers[key]

    def _take(self, record: Record, now: float) -> None:
        """Buffer what ``record`` brings (writing its run's buffer if that makes it due);
        only then does the partition's position pass it."""
        self.stats.records += 1
        read = read_checked(
            self.codec, self.topic, record.partition, record.offset, record.key, record.value
        )
        if isinstance(read, DeadLetter):
            self._refuse(read)
            self._position[record.partition] = record.offset + 1
            return
        batch, columns = read
        key = (record.partition, batch.run_id)
        buffer = self._buffer(key)
        chunk = chunk_of(batch, columns, record.partition, record.offset, buffer.seen)
        if chunk is not None:
            buffer.add_chunk(chunk, now)
            self.stats.points += len(chunk)
        if batch.events:
            self._take_events(buffer, batch, record.offset, now)
        ended = buffer.ended
        if ended or buffer.points >= self.config.policy.max_points:
            self._write(key, buffer)  # at once: file boundaries never depend on poll sizes
            if ended:  # late points of the run start a new buffer from the store
                del self._buffers[key]
        self._position[record.partition] = record.offset + 1

    def _refuse(self, letter: DeadLetter) -> None:
        """Count a refused message (the same check as the processor's) and send it to the
        dead letters when this worker has them (the embedded pipeline)."""
        self.stats.skipped += 1
        logger.warning(
            "refusing %s[%d]@%d: %s: %s",
            letter.topic,
            letter.partition,
            letter.offset,
            letter.reason,
            letter.message,
        )
        if self.dead_letters is not None:
            self.dead_letters.send(letter.key, letter.value, letter.headers())

    def _take_events(self, buffer: RunBuffer, batch: EventBatch, offset: int, now: float) -> None:
        if self.snapshots is not None and self.snapshots.changes(batch):
            buffer.state = self.snapshots.apply(buffer.state, batch)
            buffer.state_dirty = True
            buffer.hold(offset, now)
        if any(isinstance(event.payload, RunEnded) for event in batch.events):
            buffer.ended = True
            buffer.hold(offset, now)

    def _buffer(self, key: tuple[int, str]) -> RunBuffer:
        buffer = self._buffers.get(key)
        if buffer is None:
            partition, run_id = key
            # The store must show every file this run got, and no merge of it may be under
            # way while it is listed and read: a run spans several partitions when several
            # local log files (the embedded mode's partitions) hold it.
            self._writes.wait_for(lambda other: other[1] == run_id)
            self._writes.reap()
            buffer = RunBuffer(run_id, partition)
            names = self.store.list_run(run_id)
            live = live_files(names)
            hidden = [n for n in names if parse_part_name(n) is not None and n not in live]
            if hidden:  # a merge was interrupted after writing its file: finish it
                self.store.delete(hidden)
            for path in live:
                table = decode(self.store.read(path), path, ["producer_id", "sequence"])
                self._load_identities(buffer, table)
            if self.snapshots is not None:
                buffer.state = self.snapshots.load(run_id)
            self._buffers[key] = buffer
        return buffer

    @staticmethod
    def _load_identities(buffer: RunBuffer, table: Any) -> None:
        producers = table["producer_id"].to_numpy()
        sequences = table["sequence"].to_numpy()
        for producer in set(producers.tolist()):
            buffer.seen.add_array(producer, sequences[producers == producer])

    def _write(self, key: tuple[int, str], buffer: RunBuffer) -> None:
        """Hand what ``buffer`` holds to the writer threads; the buffer is empty after."""
        hold = buffer.hold_offset
        if hold is None:
            return
        chunks = buffer.chunks
        path = None
        if chunks:
            first, last = buffer.offsets()
            path = part_path(self.store.root, buffer.run_id, buffer.partition, first, last)
        state = None
        if buffer.state_dirty and self.snapshots is not None and buffer.state is not None:
            state = buffer.state.copy()  # the reducer updates states in place
        merge = buffer.ended and self.config.merge_ended_runs
        buffer.clear()
        if path is not None:  # in parallel with the run's other part files
            self._writes.submit(
                key, hold, lambda: self._write_part(key, path, chunks), ordered=False
            )
        if state is not None or merge:  # after every earlier write of the run
            self._writes.submit(key, hold, lambda: self._write_state_and_merge(key, state, merge))

    def _write_part(self, key: tuple[int, str], path: str, chunks: list[PointChunk]) -> None:
        """Write one part file (on a writer thread) and keep its table for the run's merge."""
        table, rollup = points_and_rollup(chunks)
        self._write_metric_file(path, table, rollup)
        if self.config.merge_ended_runs:
            self._cache.put(key, path.rsplit("/", 1)[-1], WrittenFile(table, rollup))
        with self._stats_lock:
            self.stats.files += 1
        logger.debug("wrote %d points of run %s to %s", table.num_rows, key[1], path)

    def _write_state_and_merge(self, key: tuple[int, str], state: Any, merge: bool) -> None:
        """Write a run's snapshot (merged with the stored one), then merge its
        files if it ended (on a writer thread)."""
        partition, run_id = key
        if state is not None and self.snapshots is not None:
            self.snapshots.write_merged(run_id, state)  # other partitions' buffers write too
        if merge:
            self.merge(run_id, partition, self._cache.take(key))

    def _write_metric_file(self, path: str, table: Any, rollup: Any) -> None:
        """Write ``table`` at ``path``, its ``rollup`` in its footer (one PUT)."""
        started = time.perf_counter()
        self.store.write(path, encode(table, rollup))
        if self.metrics is not None:
            self.metrics.write_seconds.observe(time.perf_counter() - started)

    def merge(
        self, run_id: str, partition: int, cached: Mapping[str, WrittenFile] | None = None
    ) -> str | None:
        """Merge the live files of ``run_id`` from ``partition`` into one sorted file and
        delete them; the merged file's path, or None if there was at most one file.

        ``cached`` maps file names to the tables (and rollups) known to be in them (the ones
        this worker wrote for this run since it last met it): those files are not read back.

        Readers listing with :func:`runstream.contract.layout.live_files` see either the old files
        or the merged one, never both, never neither.

        Raises:
            StoreWriteError: the store kept failing and ``stop`` was set.
            CorruptPartError: a file to merge is not a metric file.
        """
        cached = cached or {}
        files = [
            path
            for path in live_files(self.store.list_run(run_id))
            if (span := parse_part_name(path)) is not None and span[0] == partition
        ]
        if len(files) < 2:
            return None
        spans = [span for path in files if (span := parse_part_name(path)) is not None]
        known = [cached.get(path.rsplit("/", 1)[-1]) for path in files]
        # all written from one buffer (one SeenIndex): no identity is in two of them
        distinct = all(file is not None for file in known)
        merged = merge_tables(
            [
                file.table if file is not None else decode(self.store.read(path), path)
                for path, file in zip(files, known, strict=True)
            ],
            distinct=distinct,
        )
        rollup = (
            combine_rollups([file.rollup for file in known if file is not None])
            if distinct
            else rollup_table(merged)
        )
        target = f"{run_dir(self.store.root, run_id)}/" + merged_name(
            partition, min(s[1] for s in spans), max(s[2] for s in spans)
        )
        self._write_metric_file(target, merged, rollup)
        self.store.delete(path for path in files if path != target)
        with self._stats_lock:
            self.stats.merges += 1
        logger.info("merged %d files of run %s into %s", len(files), run_id, target)
        return target

    def _drop_revoked(self) -> None:
        """Release the partitions the source no longer assigns (for sources that do not
        call :meth:`_revoked` before handing them over)."""
        assignment = getattr(self.source, "assignment", None)
        if assignment is None:
            return
        assigned = frozenset(assignment())
        self.assigned = assigned
        revoked = [p for p in self._position if p not in assigned]
        if revoked:
            self._release(revoked, commit=False)

    def _revoked(self, partitions: list[int], lost: bool) -> None:
        """The source takes ``partitions`` away (called inside its poll, before their new
        owner gets them): let their writes land and commit what is written, so that the new
        owner starts after it and finds it in the store. ``lost``: they are already
        another member's; nothing can be committed."""
        self._release([p for p in partitions if p in self._position], commit=not lost)

    def _release(self, partitions: list[int], commit: bool) -> None:
        """Wait for the writes of ``partitions``, commit what they cover (if ``commit``),
        then forget their buffers: unwritten points are read again by the next owner."""
        if not partitions:
            return
        self._writes.wait_for(lambda key: key[0] in partitions)
        if commit and self._failed is None:
            wanted = {p: o for p, o in self._wanted().items() if p in partitions}
            changed = {p: o for p, o in wanted.items() if self._committed.get(p) != o}
            try:
                self.source.commit(changed)
            except SourceError as error:  # the next owner re-reads a little more
                logger.warning("commit of revoked partitions failed: %s", error)
        for partition in partitions:
            logger.info("partition %d revoked: dropping its buffers", partition)
            del self._position[partition]
            self._committed.pop(partition, None)
            for key in [k for k in self._buffers if k[0] == partition]:
                del self._buffers[key]
        self._cache.drop_partitions(partitions)

    def _wanted(self) -> dict[int, int]:
        """Per partition, the offset below which everything read is written: the first
        offset still held by a buffer or by an unfinished (or failed) write, else the
        position."""
        holds = self._writes.holds()
        for (partition, _), buffer in self._buffers.items():
            if buffer.hold_offset is not None:
                holds[partition] = min(holds.get(partition, buffer.hold_offset), buffer.hold_offset)
        return {p: holds.get(p, position) for p, position in self._position.items()}

    def _commit(self, now: float, urgent: bool) -> None:
        if self._failed is not None:
            return
        if not urgent and now - self._last_commit < self.config.commit_interval_s:
            return
        wanted = self._wanted()
        changed = {p: o for p, o in wanted.items() if self._committed.get(p) != o}
        self._last_commit = now
        if not changed:
            return
        try:
            self.source.commit(changed)
        except SourceError as error:
            logger.warning("commit failed, will retry: %s", error)
            return
        self._committed.update(changed)
        self.stats.commits += 1

    @property
    def pending(self) -> int:
        """How many run buffers hold something not yet written, plus writes in flight."""
        return sum(1 for buffer in self._buffers.values() if buffer.pending) + (
            self._writes.in_flight
        )

    def positions(self) -> Mapping[int, int]:
        """The offsets committed so far, per partition."""
        return dict(self._committed)
