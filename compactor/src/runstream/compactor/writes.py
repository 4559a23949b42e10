"""Store work running in the background while the worker keeps reading: the writes that are
in flight, and which offsets they still hold back from the commit.

Each task belongs to one run buffer (``key`` = (partition, run id)) and holds the first offset
whose effect it writes: the partition's commit stays below it until the task has succeeded.
An *ordered* task of a key (a snapshot, a merge) runs after every earlier task of that key;
an unordered one (a part file: its own path, its own rows) only after the key's last ordered
task, so a run's part files are written in parallel. Tasks of different keys run in parallel
on a small thread pool. An ordered task whose predecessor failed fails with the same error
without running, so no merge or snapshot is ever written past a missing file; the failed
task's offsets are never committed, so its points are read again and written after a
restart (the identities in the store keep every point in one file).

With ``threads=0`` every task runs at once in the caller's thread (the synchronous mode).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

logger = logging.getLogger(__name__)

Key = tuple[int, str]


@dataclass(frozen=True, slots=True)
class _Task:
    key: Key
    hold: int
    future: Future[None]


class WriteQueue:
    """Background store tasks, chained per run buffer, with the offsets they hold.

    Args:
        threads: pool size; 0 runs every task in the caller's thread.
        max_in_flight: :meth:`submit` waits while this many tasks are unfinished (memory
            bound: each holds a buffer's points).
    """

    def __init__(self, threads: int, max_in_flight: int) -> None:
        self._pool = (
            ThreadPoolExecutor(threads, thread_name_prefix="compactor-write") if threads else None
        )
        self._max_in_flight = max(1, max_in_flight)
        self._tasks: list[_Task] = []
        self._ordered: dict[Key, Future[None]] = {}  # the key's last ordered task
        self._since: dict[Key, list[Future[None]]] = {}  # its unordered tasks after that

    def submit(self, key: Key, hold: int, work: Callable[[], None], ordered: bool = True) -> None:
        """Run ``work`` after every earlier task of ``key`` (unless not ``ordered``: after
        its last ordered one only); until it succeeds, ``hold`` is held back from the commit
        of partition ``key[0]``.

        Raises:
            Exception: whatever a finished task raised (see :meth:`reap`), or ``work``'s own
                error in the synchronous mode.
        """
        if self._pool is None:
            work()
            return
        while len(self._tasks) >= self._max_in_flight:
            self._wait(FIRST_COMPLETED)
        barrier = self._ordered.get(key)
        previous = [barrier] if barrier is not None else []
        if ordered:
            previous += self._since.pop(key, [])
        future = self._pool.submit(_after, previous, work)
        if ordered:
            self._ordered[key] = future
        else:
            self._since.setdefault(key, []).append(future)
        self._tasks.append(_Task(key, hold, future))

    def reap(self) -> int:
        """Forget the tasks that succeeded; the number forgotten.

        Raises:
            Exception: the error of the first failed task (StoreWriteError, StoreAccessError,
                CorruptPartError, ...). It stays queued: its offsets are never committed.
        """
        done = [task for task in self._tasks if task.future.done()]
        for task in done:
            error = task.future.exception()
            if error is not None:
                raise error
        for task in done:
            self._tasks.remove(task)
            if self._ordered.get(task.key) is task.future:
                del self._ordered[task.key]
            since = self._since.get(task.key)
            if since is not None and task.future in since:
                since.remove(task.future)
                if not since:
                    del self._since[task.key]
        return len(done)

    def holds(self) -> dict[int, int]:
        """Partition -> the lowest offset held by an unfinished (or failed) task."""
        holds: dict[int, int] = {}
        for task in self._tasks:
            partition = task.key[0]
            holds[partition] = min(holds.get(partition, task.hold), task.hold)
        return holds

    def busy(self, key: Key) -> bool:
        """Whether a task of ``key`` is still queued, running or failed."""
        return any(task.key == key for task in self._tasks)

    def wait_for(self, keys: Callable[[Key], bool]) -> None:
        """Wait until every task whose key satisfies ``keys`` has finished (failed or not)."""
        wait([task.future for task in self._tasks if keys(task.key)])

    def join(self) -> None:
        """Wait until every task has finished (failed or not); errors stay for :meth:`reap`."""
        self._wait()

    @property
    def in_flight(self) -> int:
        """How many tasks are queued, running, or failed and not reaped."""
        return len(self._tasks)

    def close(self) -> None:
        """Wait for every task, then stop the threads. Raises nothing: errors of tasks not
        yet reaped stay for :meth:`reap` (and their offsets are never committed)."""
        wait([task.future for task in self._tasks])
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _wait(self, return_when: str = "ALL_COMPLETED") -> None:
        wait([task.future for task in self._tasks], return_when=return_when)
        self.reap()


def _after(previous: list[Future[None]], work: Callable[[], None]) -> None:
    for future in previous:
        future.result()  # re-raises a predecessor's error: never merge past a gap
    work()
