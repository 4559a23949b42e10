"""The destination: files in the store (s3fs for ``s3://``, the local filesystem for a path).

Every operation retries with exponential backoff while the store fails (an S3 server down,
a timeout) until it succeeds or ``stop`` is set; only then does it raise. Refused
credentials or permissions are not transient: they raise :class:`StoreAccessError` at once. Writes are atomic:
one PUT on S3 (a reader sees the old object or the new one), a temporary file renamed over
the target on a local disk. Knows nothing of Parquet.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from botocore.exceptions import NoCredentialsError
from fsspec import AbstractFileSystem

from runstream.compactor.exceptions import StoreAccessError, StoreWriteError
from runstream.compactor.uploads import UploadProcesses
from runstream.contract.layout import run_dir
from runstream.core.filesystem import is_local

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: ``initial_s``, doubled after each failure, at most ``max_s``."""

    initial_s: float = 0.2
    max_s: float = 5.0


class Store:
    """Atomic writes, listings, reads and deletes under one root, retried while they fail.

    Args:
        fs: the fsspec filesystem (from :func:`runstream.core.filesystem.open_store`).
        root: the store's root path in ``fs``.
        retry: the backoff policy.
        stop: when set, a failing operation gives up instead of retrying.
        uploads: helper processes that make the object store's PUTs (see
            :mod:`runstream.compactor.uploads`); None makes them in this process.
    """

    def __init__(
        self,
        fs: AbstractFileSystem,
        root: str,
        retry: RetryPolicy | None = None,
        stop: threading.Event | None = None,
        uploads: UploadProcesses | None = None,
    ) -> None:
        self.fs = fs
        self.root = root
        self._retry = retry or RetryPolicy()
        self._stop = stop or threading.Event()
        self._local = is_local(fs)
        self._uploads = None if self._local else uploads

    def write(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` atomically (replacing any file there).

        Raises:
            StoreWriteError: the store kept failing and ``stop`` was set.
        """
        self._retrying(f"write of {len(data)} bytes", path, lambda: self._write_once(path, data))

    def read(self, path: str) -> bytes:
        """The bytes of ``path``.

        Raises:
            FileNotFoundError: there is no such file.
            StoreWriteError: the store kept failing and ``stop`` was set.
        """
        return self._retrying("read", path, lambda: bytes(self.fs.cat_file(path)))

    def read_if_exists(self, path: str) -> bytes | None:
        """The bytes of ``path``, or None if there is no such file.

        Raises:
            StoreWriteError: the store kept failing and ``stop`` was set.
        """
        try:
            return self.read(path)
        except FileNotFoundError:
            return None

    def list_run(self, run_id: str) -> list[str]:
        """The paths of every file in one run's metric folder (none if it does not exist).

        Raises:
            UnsafeRunIdError: ``run_id`` is not a safe path segment.
            StoreWriteError: the store kept failing and ``stop`` was set.
        """
        folder = run_dir(self.root, run_id)
        return self._retrying("listing", folder, lambda: self._list_once(folder))

    def delete(self, paths: Iterable[str]) -> None:
        """Delete ``paths`` (already missing ones are fine): one bulk request per 1,000
        files on S3, one by one on a local disk.

        Raises:
            StoreWriteError: the store kept failing and ``stop`` was set.
        """
        paths = list(paths)
        if not paths:
            return
        if not self._local:
            self._retrying(f"delete of {len(paths)} files", paths[0], lambda: self.fs.rm(paths))
            return
        for path in paths:
            self._retrying("delete", path, lambda path=path: self._delete_once(path))  # type: ignore[misc]

    def _write_once(self, path: str, data: bytes) -> None:
        if self._uploads is not None:
            self._uploads.put(path, data)
            return
        if not self._local:
            self.fs.pipe_file(path, data)
            return
        folder = path.rsplit("/", 1)[0]
        self.fs.makedirs(folder, exist_ok=True)
        temporary = f"{folder}/.tmp-{uuid.uuid4().hex}"
        self.fs.pipe_file(temporary, data)
        self.fs.mv(temporary, path)

    def _list_once(self, folder: str) -> list[str]:
        try:
            entries = self.fs.ls(folder, detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return [str(entry) for entry in entries]

    def _delete_once(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(path)

    def _retrying(self, what: str, path: str, operation: Callable[[], T]) -> T:
        delay = self._retry.initial_s
        attempt = 0
        while True:
            try:
                return operation()
            except FileNotFoundError:
                raise
            except (PermissionError, NoCredentialsError) as error:
                raise StoreAccessError(
                    f"{what} refused: {error!r}; check the AWS credentials (AWS_ACCESS_KEY_ID, "
                    "AWS_SECRET_ACCESS_KEY, profile) and the bucket's permissions",
                    path,
                ) from error
            except Exception as error:  # s3fs/botocore/aiohttp raise many types when S3 is down
                attempt += 1
                if self._stop.is_set():
                    raise StoreWriteError(
                        f"{what} failed after {attempt} attempts: {error!r}", path
                    ) from error
                logger.warning(
                    "store %s of %s failed (attempt %d, retry in %.1fs): %r",
                    what,
                    path,
                    attempt,
                    delay,
                    error,
                )
                self._stop.wait(delay)
                delay = min(delay * 2, self._retry.max_s)
