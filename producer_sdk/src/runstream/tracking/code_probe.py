"""The code version of started runs, captured on a thread of its own.

Capturing it runs git twice (a few ms on a quiet machine, over 100 ms where many processes
start at once), so ``start_run`` does not wait for it: the run's RunStarted goes out at once
with its name, collection and tags, and this thread captures the code version (once for
every run started meanwhile) and records, for each of those runs, a second RunStarted with
the same event time that carries only the source fields and the packages. The reducer folds
it into the run's ``source`` registers and nothing else changes: its start time is the
run's, and its order key (that time) is below every later event's, so it cannot revive a
deleted run nor reopen an ended one. :meth:`CodeProbe.wait` (called by every flush) returns
once every capture asked for is queued for the batcher, so a read after a flush sees it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from runstream.contract.events import Payload, RunStarted
from runstream.tracking.environment import CodeVersion, capture_code_version
from runstream.tracking.threads import DaemonThread, reset_after_fork

logger = logging.getLogger(__name__)

Record = Callable[[str, Sequence[Payload], int], None]
"""Queues payloads for a stream at an event time (``Client.record``)."""


def code_version_event(code: CodeVersion, start_time_us: int) -> RunStarted:
    """The RunStarted that adds ``code`` to a run started at ``start_time_us``."""
    return RunStarted(
        start_time_us=start_time_us,
        source_file=code.source_file,
        command=code.command,
        git_commit=code.git_commit,
        git_dirty=code.git_dirty,
        python_version=code.python_version,
        packages=code.packages,
    )


class CodeProbe:
    """Captures the code version of started runs off the caller's thread.

    Args:
        record: queues the RunStarted that carries a run's code version.
        capture: what captures the code version (``capture_code_version``).
    """

    def __init__(
        self, record: Record, capture: Callable[[], CodeVersion] = capture_code_version
    ) -> None:
        self._record = record
        self._capture = capture
        self._setup()
        reset_after_fork(self)

    def _setup(self) -> None:
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._pending: list[tuple[str, int]] = []
        self._working = 0  # runs whose capture is under way
        self._thread: DaemonThread | None = None

    def submit(self, run_id: str, start_time_us: int) -> None:
        """Capture the code version for run ``run_id`` started at ``start_time_us`` and record
        it; returns at once (the thread is started if it is not running)."""
        with self._lock:
            self._pending.append((run_id, start_time_us))
            if self._thread is None:
                self._thread = DaemonThread(self._probe, "runstream-code-version")
                self._thread.start()
        self._wake.set()

    def wait(self, timeout: float) -> int:
        """Wait until every capture asked for is recorded; how many runs still wait for
        theirs when ``timeout`` seconds passed first (git calls time out after 5 s each)."""
        with self._done:
            self._done.wait_for(lambda: not self._pending and not self._working, timeout)
            return len(self._pending) + self._working

    def _probe(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                started, self._pending = self._pending, []
                self._working = len(started)
            if not started:
                continue
            try:
                code = self._capture()
                for run_id, start_time_us in started:
                    self._record(run_id, [code_version_event(code, start_time_us)], start_time_us)
            except Exception:  # the runs keep their RunStarted; only the code version is missing
                logger.exception("the code version of %d runs was not recorded", len(started))
            finally:
                with self._done:
                    self._working = 0
                    self._done.notify_all()
