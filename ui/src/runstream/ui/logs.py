"""A run's log lines (LogLine events), read from the event log the query engine follows.

The query layer folds run state and keeps metric points; log lines change neither, so the
UI keeps them here: :class:`RunLogs` follows an :class:`~runstream.query.tail.EventLog` incrementally
(each :meth:`RunLogs.refresh` reads only records appended since the last one) and keeps the
newest ``max_lines`` lines of each run.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from runstream.contract import Codec, DecodeError, LogLine, decode_batch
from runstream.query.tail import EventLog

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One log line of a run: event time (µs), level, message, metadata, and the producer's
    rank (None when the producer had none)."""

    time_us: int
    level: str
    message: str
    metadata: Mapping[str, str]
    rank: int | None


class RunLogs:
    """The log lines of every run in an event log. Thread-safe.

    Args:
        log: the event log (Kafka events topic or local log folder).
        codec: the message codec (one is built when None).
        max_lines: lines kept per run (the newest).
    """

    def __init__(self, log: EventLog, codec: Codec | None = None, max_lines: int = 10_000) -> None:
        self._log = log
        self._codec = codec or Codec()
        self._max_lines = max_lines
        self._next: dict[int, int] = {}
        self._lines: dict[str, deque[LogEntry]] = {}
        self._lock = threading.Lock()

    def refresh(self) -> int:
        """Read the records appended since the last call; return how many.

        Raises:
            SourceError, LocalLogError: the log cannot be read.
        """
        with self._lock:
            count = 0
            for record in self._log.read(self._next):
                count += 1
                self._next[record.partition] = record.offset + 1
                try:
                    batch = decode_batch(self._codec, record.value)
                except DecodeError:
                    logger.debug("undecodable record at %d/%d", record.partition, record.offset)
                    continue
                for event in batch.events:
                    payload = event.payload
                    if isinstance(payload, LogLine):
                        lines = self._lines.setdefault(batch.run_id, deque(maxlen=self._max_lines))
                        lines.append(
                            LogEntry(
                                event.time_us,
                                payload.level.lower(),
                                payload.message,
                                dict(payload.metadata),
                                batch.producer.rank,
                            )
                        )
            return count

    def lines(self, run_id: str, levels: frozenset[str] | None = None) -> list[LogEntry]:
        """The kept lines of ``run_id`` in event time order, only ``levels`` if given."""
        with self._lock:
            held = list(self._lines.get(run_id, ()))
        held.sort(key=lambda entry: entry.time_us)
        if levels is not None:
            held = [entry for entry in held if entry.level in levels]
        return held

    def close(self) -> None:
        """Release the log's resources (a Kafka consumer)."""
        close = getattr(self._log, "close", None)
        if close is not None:
            close()
