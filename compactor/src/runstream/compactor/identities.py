"""Which event identities (producer id, sequence) a run's metric files already hold.

A producer numbers its events with contiguous sequences, so the identities of a run form a
few intervals per producer: :class:`SeenIndex` keeps them as sorted disjoint half-open
intervals, and :meth:`SeenIndex.claim` returns the part of a new range not yet seen. That is
how an event re-sent at a new offset (after a spill, or a second ``runstream sync``) is kept
out of the Parquet files.
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np
import numpy.typing as npt


class SeenIndex:
    """Half-open sequence intervals per producer id; merged as they are added."""

    __slots__ = ("_intervals",)

    def __init__(self) -> None:
        self._intervals: dict[str, tuple[list[int], list[int]]] = {}

    def __len__(self) -> int:
        return sum(
            end - start
            for starts, ends in self._intervals.values()
            for start, end in zip(starts, ends, strict=True)
        )

    def contains(self, producer: str, sequence: int) -> bool:
        """Whether ``(producer, sequence)`` has been added."""
        entry = self._intervals.get(producer)
        if entry is None:
            return False
        starts, ends = entry
        i = bisect_right(starts, sequence) - 1
        return i >= 0 and sequence < ends[i]

    def claim(self, producer: str, start: int, end: int) -> list[tuple[int, int]]:
        """Add ``[start, end)`` for ``producer``; return the sub-ranges that were new."""
        if end <= start:
            return []
        starts, ends = self._intervals.setdefault(producer, ([], []))
        new: list[tuple[int, int]] = []
        cursor = start
        i = max(bisect_right(starts, start) - 1, 0)
        while cursor < end and i < len(starts):
            if ends[i] <= cursor:
                i += 1
                continue
            if starts[i] >= end:
                break
            if starts[i] > cursor:
                new.append((cursor, starts[i]))
            cursor = max(cursor, ends[i])
            i += 1
        if cursor < end:
            new.append((cursor, end))
        for piece in new:
            self._insert(starts, ends, *piece)
        return new

    def add_array(self, producer: str, sequences: npt.NDArray[np.int64]) -> None:
        """Add every sequence of ``sequences`` (any order, duplicates allowed)."""
        if len(sequences) == 0:
            return
        ordered = np.unique(sequences)
        breaks = np.flatnonzero(np.diff(ordered) != 1) + 1
        run_starts = np.concatenate(([0], breaks))
        run_ends = np.concatenate((breaks, [len(ordered)]))
        for first, last in zip(run_starts.tolist(), run_ends.tolist(), strict=True):
            self.claim(producer, int(ordered[first]), int(ordered[last - 1]) + 1)

    @staticmethod
    def _insert(starts: list[int], ends: list[int], start: int, end: int) -> None:
        i = bisect_right(starts, start)
        starts.insert(i, start)
        ends.insert(i, end)
        # merge with neighbours that touch
        if i + 1 < len(starts) and starts[i + 1] == ends[i]:
            ends[i] = ends[i + 1]
            del starts[i + 1], ends[i + 1]
        if i > 0 and ends[i - 1] == starts[i]:
            ends[i - 1] = ends[i]
            del starts[i], ends[i]
