"""Artifact uploads: files of a run stored next to its history, then recorded as events.

A logging call (``Run.log_artifact``, ``log_text``, ...) checks its input on the caller's
thread and hands an :class:`Upload` (one or more files) to the :class:`Uploader`, whose
threads do the rest, so a large file never holds up the training loop:

1. hash the bytes (SHA-256) and store them at the run's content address
   (:func:`runstream.contract.layout.artifact_object_path`), unless an object of that digest and size
   is already there: the same file logged twice is stored once;
2. only when the object is stored, produce the ``ArtifactLogged`` event (path, URI, size,
   sha256, media type) through the batcher.

A store that fails (S3 down, a timeout) is retried with exponential backoff until
``deadline_s``; refused credentials and a vanished local file fail at once. A failed upload
records nothing, and :meth:`Uploader.wait` (called by ``Client.flush``) raises it. Objects
are written whole or not at all: one PUT (or a multipart upload completed last) on S3, a
temporary file renamed over the target on a local disk. Files of one upload are stored and
recorded in order, so a model's manifest, recorded last, means the model is complete.

Small files (up to ``SNAPSHOT_BYTES``) are read on the caller's thread, so changing them
after the call changes nothing; larger ones are read by the upload thread: leave them
unchanged until ``flush()``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import mimetypes
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from botocore.exceptions import NoCredentialsError
from fsspec import AbstractFileSystem

from runstream.contract.events import ArtifactLogged
from runstream.contract.layout import artifact_object_path
from runstream.core.filesystem import is_local, open_store
from runstream.core.settings import Settings
from runstream.tracking.exceptions import ArtifactError

logger = logging.getLogger(__name__)

SNAPSHOT_BYTES = 1 << 20
_CHUNK = 1 << 20
DEFAULT_MEDIA_TYPE = "application/octet-stream"
_MEDIA_TYPES = {".yaml": "application/yaml", ".yml": "application/yaml", ".md": "text/markdown"}

Emit = Callable[[str, ArtifactLogged], None]


@dataclass(frozen=True, slots=True)
class UploadPolicy:
    """How uploads retry: backoff from ``initial_s``, doubled up to ``max_s``, until
    ``deadline_s`` after the first attempt; ``threads`` uploads run at once."""

    initial_s: float = 0.2
    max_s: float = 5.0
    deadline_s: float = 600.0
    threads: int = 2


@dataclass(frozen=True, slots=True)
class UploadFile:
    """One file of an upload: its artifact path and its bytes (in memory, or a local file)."""

    path: str
    data: bytes | None = None
    local: Path | None = None
    media_type: str = DEFAULT_MEDIA_TYPE

    def open(self) -> IO[bytes]:
        """A binary stream of the bytes.

        Raises:
            FileNotFoundError: the local file is gone.
        """
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.local is not None
        return self.local.open("rb")


@dataclass(slots=True)
class Upload:
    """Files of one logging call, stored and recorded in order; ``cleanup`` (a temporary
    folder) is removed when the upload is over."""

    run_id: str
    files: list[UploadFile]
    cleanup: Path | None = None
    done: list[ArtifactLogged] = field(default_factory=list)


def media_type(path: str) -> str:
    """The media type of an artifact path, from its extension (octet-stream if unknown)."""
    suffix = Path(path).suffix.lower()
    if suffix in _MEDIA_TYPES:
        return _MEDIA_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(path, strict=False)
    return guessed or DEFAULT_MEDIA_TYPE


def file_of(path: str, local: Path) -> UploadFile:
    """The upload of local file ``local`` as artifact ``path``: read now if small.

    Raises:
        ArtifactError: the file cannot be read.
    """
    try:
        size = local.stat().st_size
        data = local.read_bytes() if size <= SNAPSHOT_BYTES else None
    except OSError as error:
        raise ArtifactError(f"cannot read local file {str(local)!r}: {error}", path=path) from error
    return UploadFile(path, data, None if data is not None else local, media_type(path))


class Uploader:
    """Stores artifact files in the store of ``settings`` on its own threads and produces
    their events through ``emit`` once stored.

    Args:
        settings: the resolved settings (the store, its options).
        emit: called with (run id, event) after an object is stored.
        policy: retries and threads.
    """

    def __init__(self, settings: Settings, emit: Emit, policy: UploadPolicy | None = None) -> None:
        self.settings = settings
        self.policy = policy or UploadPolicy()
        self._emit = emit
        self._lock = threading.Lock()
        self._pending: set[Future[list[ArtifactLogged]]] = set()
        self._failures: list[ArtifactError] = []
        self._executor: ThreadPoolExecutor | None = None
        self._store: tuple[AbstractFileSystem, str] | None = None

    def submit(self, upload: Upload) -> Future[list[ArtifactLogged]]:
        """Store and record ``upload`` in the background; the future gives its events.

        Raises:
            ArtifactError: the uploader is closed.
        """
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.policy.threads, thread_name_prefix="runstream-artifacts"
                )
            future = self._executor.submit(self._run, upload)
            self._pending.add(future)
        return future

    def _collect(self) -> None:
        """Move finished uploads out of the pending set, keeping their failures."""
        with self._lock:
            finished = [future for future in self._pending if future.done()]
            for future in finished:
                self._pending.discard(future)
                error = None if future.cancelled() else future.exception()
                if isinstance(error, ArtifactError):
                    self._failures.append(error)
                elif error is not None:
                    self._failures.append(ArtifactError(f"artifact upload failed: {error!r}"))

    def pending(self) -> int:
        """Uploads not finished yet."""
        self._collect()
        with self._lock:
            return len(self._pending)

    def wait(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for every upload submitted so far; return how many
        are still running.

        Raises:
            ArtifactError: an upload failed since the last call (the first failure; the
                others are logged). Nothing of a failed upload's failed file was recorded.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            waiting = list(self._pending)
        for future in waiting:
            with contextlib.suppress(Exception):
                future.result(max(0.0, deadline - time.monotonic()))
        self._collect()
        with self._lock:
            failures, self._failures = self._failures, []
            left = len(self._pending)
        for extra in failures[1:]:
            logger.error("%s", extra)
        if failures:
            raise failures[0]
        return left

    def close(self, timeout: float) -> int:
        """Wait up to ``timeout`` for the uploads, then stop the threads; return how many
        uploads were not finished (logged as errors; a failure is logged, not raised)."""
        try:
            left = self.wait(timeout)
        except ArtifactError as error:
            logger.error("%s", error)
            left = self.pending()
        if left:
            logger.error("%d artifact uploads not finished at close: not recorded", left)
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        return left

    # --- the upload thread ------------------------------------------------------------------

    def _open(self) -> tuple[AbstractFileSystem, str]:
        if self._store is None:
            self._store = open_store(self.settings)
        return self._store

    def _run(self, upload: Upload) -> list[ArtifactLogged]:
        try:
            for item in upload.files:
                event = self._store_file(upload.run_id, item)
                self._emit(upload.run_id, event)
                upload.done.append(event)
                logger.debug(
                    "run %s: artifact %s stored at %s", upload.run_id, item.path, event.uri
                )
            return upload.done
        finally:
            if upload.cleanup is not None:
                shutil.rmtree(upload.cleanup, ignore_errors=True)

    def _store_file(self, run_id: str, item: UploadFile) -> ArtifactLogged:
        try:
            sha256, size = _digest(item)
        except OSError as error:
            raise ArtifactError(
                f"cannot read the local file {str(item.local)!r}: {error}", run_id, item.path
            ) from error
        uri = self._retrying(run_id, item, lambda: self._put(run_id, item, sha256, size))
        return ArtifactLogged(item.path, uri, size, sha256, item.media_type)

    def _put(self, run_id: str, item: UploadFile, sha256: str, size: int) -> str:
        fs, root = self._open()
        target = artifact_object_path(root, run_id, sha256)
        if _stored_size(fs, target) == size:  # content-addressed: already there
            return str(fs.unstrip_protocol(target))
        folder = target.rsplit("/", 1)[0]
        if is_local(fs):
            fs.makedirs(folder, exist_ok=True)
            temporary = f"{folder}/.tmp-{uuid.uuid4().hex}"
            try:
                _write(fs, temporary, item)
                fs.mv(temporary, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    fs.rm_file(temporary)
        else:
            _write(fs, target, item)  # S3: the object appears whole, or not at all
        stored = _stored_size(fs, target)
        if stored != size:
            raise OSError(f"stored object has {stored} bytes, expected {size}")
        return str(fs.unstrip_protocol(target))

    def _retrying(self, run_id: str, item: UploadFile, operation: Callable[[], str]) -> str:
        policy = self.policy
        delay = policy.initial_s
        deadline = time.monotonic() + policy.deadline_s
        attempt = 0
        while True:
            try:
                return operation()
            except FileNotFoundError as error:
                raise ArtifactError(
                    f"the local file vanished before it was stored: {error}", run_id, item.path
                ) from error
            except (PermissionError, NoCredentialsError) as error:
                raise ArtifactError(
                    f"the store refused the upload: {error!r}; check the AWS credentials "
                    "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, profile) and the bucket's "
                    "permissions",
                    run_id,
                    item.path,
                ) from error
            except Exception as error:  # s3fs/botocore/aiohttp raise many types when S3 is down
                attempt += 1
                if time.monotonic() + delay > deadline:
                    raise ArtifactError(
                        f"not stored after {attempt} attempts in {policy.deadline_s:g} s: "
                        f"{error!r}",
                        run_id,
                        item.path,
                    ) from error
                logger.warning(
                    "run %s: storing artifact %s failed (attempt %d, retry in %.1fs): %r",
                    run_id,
                    item.path,
                    attempt,
                    delay,
                    error,
                )
                time.sleep(delay)
                delay = min(delay * 2, policy.max_s)


def _digest(item: UploadFile) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with item.open() as stream:
        for chunk in _chunks(stream):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK):
        yield chunk


def _write(fs: AbstractFileSystem, target: str, item: UploadFile) -> None:
    if item.data is not None:
        fs.pipe_file(target, item.data)
    else:
        assert item.local is not None
        fs.put_file(str(item.local), target)


def _stored_size(fs: AbstractFileSystem, path: str) -> int | None:
    fs.invalidate_cache(path)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        return None
    size = info.get("size")
    return None if size is None else int(size)
