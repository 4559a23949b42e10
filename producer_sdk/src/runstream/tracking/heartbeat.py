"""Heartbeats of the runs this process started, from a thread of their own.

While a run is open, a :class:`~runstream.contract.events.Heartbeat` joins its queue every
``interval`` seconds; the batcher sends it like any event. A run whose heartbeats stop (the
process was killed, ran out of memory or lost its machine) is shown CRASHED by readers once
their lease passes (:mod:`runstream.contract.liveness`). The caller's thread only adds a run
to a list; the thread runs only while some run is open, and a forked child starts with no
runs (the parent beats its own) and a thread of its own if it starts one.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from runstream.contract.events import Event, Heartbeat
from runstream.tracking.batcher import Batcher, now_us
from runstream.tracking.threads import DaemonThread, reset_after_fork

if TYPE_CHECKING:
    from runstream.tracking.run import Run

logger = logging.getLogger(__name__)


class Heartbeats:
    """Beats for every open run added, every ``interval`` seconds.

    Args:
        batcher: the batcher that sends the runs' queues.
        interval: seconds between two heartbeats of a run.
    """

    def __init__(self, batcher: Batcher, interval: float) -> None:
        self.batcher = batcher
        self.interval = interval
        self._setup()
        reset_after_fork(self)

    def _setup(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._runs: list[Run] = []
        self._thread: DaemonThread | None = None
        self._closed = False

    def first(self) -> Heartbeat:
        """The heartbeat to send with a run's RunStarted, so a run killed before the first
        interval passes is judged too."""
        return Heartbeat(int(self.interval * 1000))

    def add(self, run: Run) -> None:
        """Beat for ``run`` until it ends (the thread is started if it is not running)."""
        with self._lock:
            if self._closed:
                return
            self._runs.append(run)
            if self._thread is None or not self._thread.is_alive():
                self._thread = DaemonThread(self._beat, "runstream-heartbeat")
                self._thread.start()

    def close(self) -> None:
        """Stop beating for every run (at the client's close)."""
        with self._lock:
            self._closed = True
            self._runs = []
            thread = self._thread
        self._wake.set()
        if thread is not None and not thread.is_current():
            thread.join(timeout=5.0)

    def _beat(self) -> None:
        heartbeat = self.first()
        while not self._wake.wait(self.interval):
            with self._lock:
                self._runs = [run for run in self._runs if _is_open(run)]
                runs = list(self._runs)
                if not runs:
                    self._thread = None
                    return
            event = Event(now_us(), heartbeat)
            for run in runs:
                run._queue.events.append(event)
            self.batcher.wake()
            logger.debug("heartbeat of %d runs", len(runs))


def _is_open(run: Run) -> bool:
    return run.status == "RUNNING" and not run._queue.closed
