"""PUTs to an object store from helper processes, off the compactor worker's interpreter lock.

A PUT through s3fs costs about 3 ms of Python CPU (botocore builds, signs and parses every
request), all of it holding the GIL that the worker's reading, decoding and encoding threads
need. Measured on the compactor benchmark, S3 requests were half of the worker's GIL time.
:class:`UploadProcesses` makes those PUTs in a few helper processes instead; the worker's
writer threads hand over (path, bytes) and wait for the answer without holding the GIL.

Each helper is spawned (no forked event loops) and opens the store with
:func:`runstream.core.filesystem.open_store` from the worker's own settings, so the endpoint,
credentials and s3fs options come from the one place they always do. A helper makes one
attempt per request: a failure comes back to :class:`runstream.compactor.store.Store`, whose backoff
and stop rules apply exactly as to a PUT made in-process. A helper that dies is replaced;
helpers exit when the worker does, even when it is killed (each watches its parent).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
import types
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from botocore.exceptions import NoCredentialsError
from fsspec import AbstractFileSystem

from runstream.core.filesystem import open_store
from runstream.core.settings import Settings

logger = logging.getLogger(__name__)

_store: AbstractFileSystem | None = None  # in a helper: its filesystem, opened once
_WATCH_INTERVAL_S = 0.5


class UploadProcesses:
    """A few helper processes that write whole objects to the store of ``settings``.

    Args:
        settings: the worker's resolved settings (its store must not be a local folder:
            local writes are cheap and need a rename, see :class:`runstream.compactor.store.Store`).
        processes: how many helpers (each makes one PUT at a time).

    Raises:
        ValueError: ``processes`` is below 1.
    """

    def __init__(self, settings: Settings, processes: int = 2) -> None:
        if processes < 1:
            raise ValueError(f"processes must be at least 1, not {processes}")
        self._settings = settings
        self._processes = processes
        self._lock = threading.Lock()
        self._pool = self._start()

    def put(self, path: str, data: bytes) -> None:
        """Write ``data`` at ``path`` (one attempt, in a helper); returns once it is stored.

        Raises:
            FileNotFoundError: the bucket does not exist.
            PermissionError: the store refused the credentials or the write.
            OSError: the store failed (down, timed out) or the helper died: retry.
        """
        with self._lock:
            pool = self._pool
        try:
            pool.submit(_put, path, data).result()
        except BrokenProcessPool as error:
            self._replace(pool)
            raise OSError(f"an upload process died: {error}") from error

    def close(self) -> None:
        """Stop the helpers (after the requests they have started)."""
        with self._lock:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> UploadProcesses:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: types.TracebackType | None,
    ) -> None:
        self.close()

    def _start(self) -> ProcessPoolExecutor:
        """A new pool whose helpers start now, in the background (a start takes about a
        second: the worker's first file should not wait for it)."""
        pool = ProcessPoolExecutor(
            self._processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_open,
            initargs=(self._settings, os.getpid()),
        )
        for _ in range(self._processes):
            pool.submit(_ready)
        return pool

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken:
                logger.warning("an upload process died: starting new ones")
                broken.shutdown(wait=False, cancel_futures=True)
                self._pool = self._start()


def _open(settings: Settings, worker: int) -> None:
    """In a helper of process ``worker``: exit as soon as the worker is gone (it may be
    already), and open the store once."""
    threading.Thread(target=_exit_with, args=(worker,), name="upload-watchdog", daemon=True).start()
    global _store
    _store, _ = open_store(settings)


def _exit_with(worker: int) -> None:
    """Exit this helper once ``worker`` is no longer its parent: a killed worker cannot stop
    its helpers, and the request pipe stays open in them (they never read end-of-file)."""
    while os.getppid() == worker:
        time.sleep(_WATCH_INTERVAL_S)
    os._exit(0)


def _ready() -> None:
    """In a helper: nothing (submitted once per helper, so that each starts at once)."""


def _put(path: str, data: bytes) -> None:
    """In a helper: one PUT; errors turned into plain OSErrors that cross the pipe intact
    (botocore's own exceptions do not always unpickle)."""
    assert _store is not None, "the helper's initializer did not run"
    try:
        _store.pipe_file(path, data)
    except (FileNotFoundError, PermissionError) as error:
        raise type(error)(str(error)) from None
    except NoCredentialsError as error:
        raise PermissionError(str(error)) from None
    except Exception as error:  # s3fs/botocore/aiohttp raise many types when S3 is down
        raise OSError(f"{type(error).__name__}: {error}") from None
