"""The SDK's background threads: started without the caller waiting, reset in a forked child.

``threading.Thread.start`` returns only once the new thread has run its first instructions:
the caller waits for the scheduler to give the thread a turn. On a loaded machine (a
distributed job's workers sharing a node) that is tens of milliseconds per thread, and a
training script's first ``start_run`` started three of them (the batcher, the heartbeats and
the code-version probe): 69-104 ms measured in the scale test. :class:`DaemonThread` starts
its thread with the ``_thread`` module's primitive, which returns at once; the thread runs
when it gets its turn, and the work it was given waits in its queue meanwhile.
"""

from __future__ import annotations

import _thread
import os
import threading
import weakref
from collections.abc import Callable
from typing import Protocol


class DaemonThread:
    """A daemon thread running ``target`` once started; :meth:`start` does not wait for it.

    Args:
        target: what the thread runs.
        name: the thread's name (as ``threading.current_thread().name`` within it).
    """

    def __init__(self, target: Callable[[], None], name: str) -> None:
        self._target = target
        self.name = name
        self._finished = threading.Event()
        self._ident: int | None = None
        self._started = False

    def start(self) -> None:
        """Start the thread and return at once (without waiting for it to be scheduled).

        Raises:
            RuntimeError: it was started before, or the system refused a new thread.
        """
        if self._started:
            raise RuntimeError(f"thread {self.name} started twice")
        self._started = True
        _thread.start_new_thread(self._run, ())

    def _run(self) -> None:
        self._ident = threading.get_ident()
        threading.current_thread().name = self.name
        try:
            self._target()
        finally:
            self._finished.set()

    def is_alive(self) -> bool:
        """Started and not finished (True from :meth:`start` on, even before its first turn)."""
        return self._started and not self._finished.is_set()

    def is_current(self) -> bool:
        """Whether the calling thread is this thread."""
        return self._ident == threading.get_ident()

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the thread to finish; whether it has."""
        if not self._started:
            return True
        return self._finished.wait(timeout)


class _Resettable(Protocol):
    def _setup(self) -> None: ...


def reset_after_fork(owner: _Resettable) -> None:
    """Call ``owner._setup()`` in a forked child (while ``owner`` lives): the parent's
    thread, locks and queued work are not the child's."""
    reference = weakref.ref(owner)

    def reset() -> None:
        alive = reference()
        if alive is not None:
            alive._setup()

    os.register_at_fork(after_in_child=reset)
