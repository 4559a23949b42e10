"""What the UI's endpoints ask: the query engine and the run logs, behind one lock.

The engine is thread-safe, but a UI request is cheap next to a refresh of the event log, and
two refreshes racing over the same new records gain nothing: requests take turns.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from runstream.core.settings import Settings
from runstream.query import QueryEngine, Run
from runstream.query.tail import event_log
from runstream.ui.logs import LogEntry, RunLogs


class Backend:
    """The engine and the logs of one store, serialized by a lock.

    Args:
        engine: the query engine.
        logs: the run logs (None: no log lines are shown).
        description: what the UI shows about where the data comes from.
    """

    def __init__(
        self, engine: QueryEngine, logs: RunLogs | None, description: dict[str, str]
    ) -> None:
        self._engine = engine
        self._logs = logs
        self._lock = threading.Lock()
        self.description = description

    @classmethod
    def from_settings(cls, settings: Settings) -> Backend:
        """The backend of a tracking URI and store.

        Raises:
            ConfigError: the store cannot be opened.
        """
        return cls(
            QueryEngine.from_settings(settings),
            RunLogs(event_log(settings)),
            {"tracking_uri": str(settings.tracking_uri), "store": settings.store},
        )

    def search_runs(self, filter: str | None, order_by: Sequence[str], limit: int) -> list[Run]:
        """:meth:`QueryEngine.search_runs`.

        Raises:
            FilterError: the filter or an order-by clause is malformed.
            SourceError, LocalLogError: the log cannot be read.
        """
        with self._lock:
            return self._engine.search_runs(filter, order_by, limit)

    def get_run(self, run_id: str) -> Run:
        """:meth:`QueryEngine.get_run`.

        Raises:
            RunNotFoundError: no visible run has this id.
            SourceError, LocalLogError: the log cannot be read.
        """
        with self._lock:
            return self._engine.get_run(run_id)

    def history(
        self, run_id: str, key: str, start: int | None, end: int | None, max_points: int
    ) -> pa.Table:
        """:meth:`QueryEngine.get_metric_history` downsampled to at most ``max_points``.

        Raises:
            UnsafeRunIdError: the run id is not a safe path segment.
            SourceError, LocalLogError: the log cannot be read.
        """
        with self._lock:
            return self._engine.get_metric_history(
                run_id, key, start_step=start, end_step=end, max_points=max_points
            )

    def logs(self, run_id: str, levels: frozenset[str] | None) -> list[LogEntry]:
        """The log lines of ``run_id`` as of now (only ``levels`` if given).

        Raises:
            SourceError, LocalLogError: the log cannot be read.
        """
        if self._logs is None:
            return []
        with self._lock:
            self._logs.refresh()
        return self._logs.lines(run_id, levels)

    def info(self) -> dict[str, Any]:
        """Where the data comes from."""
        return dict(self.description)

    def close(self) -> None:
        """Close the engine and the logs."""
        with self._lock:
            self._engine.close()
            if self._logs is not None:
                self._logs.close()
