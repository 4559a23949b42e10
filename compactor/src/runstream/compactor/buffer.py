"""Per-run buffers of metric points, and the triggers that decide when one is written.

A :class:`RunBuffer` gathers the points of one run read from one partition as
:class:`PointChunk` columns (one per message: numpy arrays, no object per point). It is due
(:meth:`RunBuffer.due`) when it holds ``max_points`` points, when the run has ended, or when
its oldest pending contribution is older than the rotate interval. ``hold_offset`` is the
first offset whose effect is still only in memory: the partition's commit must stay below it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from runstream.compactor.identities import SeenIndex
from runstream.contract.columns import MetricArrays
from runstream.contract.events import EventBatch, MetricLogged
from runstream.contract.parquet import Int64Array, PointChunk


@dataclass(frozen=True, slots=True)
class BufferPolicy:
    """When a run's buffer is written.

    Attributes:
        max_points: write when the buffer holds at least this many points.
        rotate_interval_s: write when the oldest pending point is older than this.
    """

    max_points: int = 10_000
    rotate_interval_s: float = 30.0


def chunk_of(
    batch: EventBatch, columns: MetricArrays, partition: int, offset: int, seen: SeenIndex
) -> PointChunk | None:
    """The points of ``batch`` (its metric ``columns`` given apart, as arrays) not in
    ``seen`` (which then holds them), or None if none.

    Column points and MetricLogged events both count; every other event is ignored here.
    """
    producer = batch.producer.id
    keys: list[str] = []
    parts: list[
        tuple[npt.NDArray[np.int32], Int64Array, Int64Array, npt.NDArray[np.float64], Int64Array]
    ] = []
    for sequence, event in batch.numbered_events():
        payload = event.payload
        if isinstance(payload, MetricLogged) and seen.claim(producer, sequence, sequence + 1):
            keys.append(payload.key)
            parts.append(
                (
                    np.array([len(keys) - 1], np.int32),
                    np.array([payload.step], np.int64),
                    np.array([payload.timestamp], np.int64),
                    np.array([payload.value], np.float64),
                    np.array([sequence], np.int64),
                )
            )
    sequence = batch.columns_first_sequence
    count = len(columns)
    if count:
        new = seen.claim(producer, sequence, sequence + count)
        if new:
            base = len(keys)
            keys.extend(columns.keys)
            key_index = columns.key_index + np.int32(base) if base else columns.key_index
            steps, timestamps, values = columns.steps, columns.timestamps, columns.values
            if new == [(sequence, sequence + count)]:
                parts.append(
                    (
                        key_index,
                        steps,
                        timestamps,
                        values,
                        np.arange(sequence, sequence + count, dtype=np.int64),
                    )
                )
            else:
                picks = np.concatenate([np.arange(s, e, dtype=np.int64) for s, e in new])
                at = picks - sequence
                parts.append((key_index[at], steps[at], timestamps[at], values[at], picks))
    if not parts:
        return None
    if len(parts) == 1:
        key_index, steps, timestamps, values, sequences = parts[0]
    else:
        key_index, steps, timestamps, values, sequences = (
            np.concatenate([part[i] for part in parts]) for i in range(5)
        )
    return PointChunk(
        keys, key_index, steps, timestamps, values, producer, sequences, partition, offset
    )


@dataclass(slots=True)
class RunBuffer:
    """What one run (read from one partition) holds in memory until it is written.

    Attributes:
        run_id: the run.
        partition: the partition its messages come from.
        seen: identities already in the store or in this buffer.
        chunks: pending points.
        points: number of pending points.
        hold_offset: first offset whose effect is pending (None: nothing pending).
        since: monotonic time of the oldest pending contribution.
        state_dirty: the run's state changed since its snapshot was written.
        ended: a RunEnded is pending.
        state: the run's state (a stream_processor RunState) when snapshots are written.
    """

    run_id: str
    partition: int
    seen: SeenIndex = field(default_factory=SeenIndex)
    chunks: list[PointChunk] = field(default_factory=list)
    points: int = 0
    hold_offset: int | None = None
    since: float = 0.0
    state_dirty: bool = False
    ended: bool = False
    state: Any = None

    def add_chunk(self, chunk: PointChunk, now: float) -> None:
        """Hold ``chunk`` (read at monotonic time ``now``)."""
        self.chunks.append(chunk)
        self.points += len(chunk)
        self.hold(chunk.offset, now)

    def hold(self, offset: int, now: float) -> None:
        """Mark the message at ``offset`` as pending (its effect is not written yet)."""
        if self.hold_offset is None:
            self.hold_offset = offset
            self.since = now
        else:
            self.hold_offset = min(self.hold_offset, offset)

    @property
    def pending(self) -> bool:
        """Whether anything waits to be written."""
        return self.hold_offset is not None

    def due(self, policy: BufferPolicy, now: float) -> bool:
        """Whether this buffer must be written now."""
        if not self.pending:
            return False
        return (
            self.ended
            or self.points >= policy.max_points
            or now - self.since >= policy.rotate_interval_s
        )

    def offsets(self) -> tuple[int, int]:
        """(first, last) offset of the pending points.

        Raises:
            ValueError: no point is pending.
        """
        if not self.chunks:
            raise ValueError(f"run {self.run_id} has no pending points")
        return self.chunks[0].offset, self.chunks[-1].offset

    def clear(self) -> None:
        """Forget what was pending: it has been written."""
        self.chunks = []
        self.points = 0
        self.hold_offset = None
        self.state_dirty = False
        self.ended = False
