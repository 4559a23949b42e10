"""The SDK's local journal: every encoded batch, appended to a local file before it is sent.

A journal file is a local log file (:mod:`runstream.core.locallog`: one Avro block per batch,
flushed to the OS, no fsync), so a batch written before a ``kill -9`` survives in the page
cache. The Kafka sink writes each batch here before producing it, counts the batches Kafka
acknowledges, and deletes a file once it is closed and every batch in it is acknowledged; a
batch Kafka did not take stays in its file and is produced again from there (the same bytes,
so the same event identities: readers deduplicate a batch that arrives twice).

Files are named ``<destination>-<producer id>-<pid>-<n>.avro`` where ``<destination>`` is
:func:`destination_key` of the broker and topic, so a later process logging to the same
destination adopts (and resends) the files of a process that died, and never those of
another destination. A file is ``flock``-ed while its writer (or an adopter) holds it.

A write that fails (folder unwritable, disk full) is never raised from here: the journal
remembers the error (:attr:`Journal.error`) and the sink decides what is at risk; the next
append tries a new file at most once per :data:`RETRY_SECONDS`.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from runstream.core.locallog import LocalLogError, LogWriter, log_files, read_file

logger = logging.getLogger(__name__)

DEFAULT_FILE_BYTES = 8 << 20
RETRY_SECONDS = 1.0


def destination_key(bootstrap_servers: str, topic: str) -> str:
    """The 12 hex digits naming journal files of one broker and topic."""
    return hashlib.sha256(f"{bootstrap_servers}|{topic}".encode()).hexdigest()[:12]


@dataclass(eq=False)
class JournalFile:
    """One journal file of this process: what was written to it, what is not acknowledged,
    and which of its batches wait for a resend (record index -> events)."""

    path: Path
    writer: LogWriter | None
    records: int = 0
    size: int = 0
    unacknowledged: int = 0  # records written and not acknowledged yet
    unsent: dict[int, int] = field(default_factory=dict)

    @property
    def retired(self) -> bool:
        """True once no more batches are appended to the file."""
        return self.writer is None


@dataclass(eq=False)
class Entry:
    """Where one batch lies in the journal."""

    file: JournalFile
    index: int
    events: int


class Journal:
    """This process's journal files in ``folder`` (see the module docstring).

    Args:
        folder: the journal folder (created on the first append).
        prefix: the start of this process's file names (``<destination>-<producer id>``).
        file_bytes: a file is closed and a new one started past this size.
    """

    def __init__(self, folder: Path, prefix: str, file_bytes: int = DEFAULT_FILE_BYTES) -> None:
        self.folder = folder
        self.prefix = prefix
        self.file_bytes = file_bytes
        self.error = ""  # the last write error, "" once a write succeeds again
        self._current: JournalFile | None = None
        self._files: list[JournalFile] = []
        self._count = 0
        self._failed_at = float("-inf")

    def append(self, run_id: str, value: bytes, events: int) -> Entry | None:
        """Append one batch (flushed to the OS); None when it could not be written (the
        reason is in :attr:`error`)."""
        current = self._writable()
        if current is None or current.writer is None:
            return None
        try:
            current.writer.append([(run_id, value)])
        except LocalLogError as error:
            self._fail(str(error))
            self._retire(current)
            return None
        self.error = ""
        entry = Entry(current, current.records, events)
        current.records += 1
        current.size += len(value)
        current.unacknowledged += 1
        if current.size >= self.file_bytes:
            self._retire(current)
        return entry

    def _writable(self) -> JournalFile | None:
        if self._current is not None:
            return self._current
        if time.monotonic() - self._failed_at < RETRY_SECONDS:
            return None
        self._count += 1
        path = self.folder / f"{self.prefix}-{os.getpid()}-{self._count}.avro"
        try:
            writer = LogWriter(path)
        except LocalLogError as error:
            self._fail(str(error))
            return None
        self._current = JournalFile(path, writer)
        self._files.append(self._current)
        return self._current

    def _fail(self, text: str) -> None:
        if text != self.error:
            logger.error("runstream journal: %s", text)
        self.error = text
        self._failed_at = time.monotonic()

    def _retire(self, file: JournalFile) -> None:
        if file.writer is not None:
            try:
                file.writer.close(sync=False)
            except OSError as error:
                logger.warning("closing journal file %s: %s", file.path, error)
            file.writer = None
        if self._current is file:
            self._current = None
        self._drop_if_done(file)

    def _drop_if_done(self, file: JournalFile) -> None:
        if file.retired and file.unacknowledged == 0 and file in self._files:
            self._files.remove(file)
            file.path.unlink(missing_ok=True)

    def acknowledged(self, entry: Entry) -> None:
        """Kafka acknowledged the batch of ``entry``: a retired file whose batches are all
        acknowledged is deleted."""
        entry.file.unacknowledged -= 1
        self._drop_if_done(entry.file)

    def unsent(self, entry: Entry) -> None:
        """The batch of ``entry`` is not in Kafka's hands: keep it for :meth:`resend`."""
        entry.file.unsent[entry.index] = entry.events

    def has_unsent(self) -> bool:
        """True when some batch waits for a resend."""
        return any(file.unsent for file in self._files)

    def resend(self) -> Iterator[tuple[Entry, str, bytes]]:
        """Every batch waiting for a resend, read back from its file, oldest first; each is
        no longer waiting once yielded.

        Raises:
            LocalLogError: a journal file cannot be read.
        """
        for file in list(self._files):
            if not file.unsent:
                continue
            for record in read_file(file.path, min(file.unsent)):
                events = file.unsent.pop(record.offset, None)
                if events is not None:
                    run_id = (record.key or b"").decode("utf-8")
                    yield Entry(file, record.offset, events), run_id, record.value or b""
                if not file.unsent:
                    break

    def retire_acknowledged(self) -> None:
        """Close (and so delete) the current file when every batch in it is acknowledged."""
        if self._current is not None and self._current.unacknowledged == 0:
            self._retire(self._current)

    def close(self) -> list[Path]:
        """Close the current file; delete the files whose batches are all acknowledged and
        return those that are kept (they hold batches not acknowledged)."""
        if self._current is not None:
            self._retire(self._current)
        return [file.path for file in self._files]

    def reset(self) -> None:
        """Forget every file (a forked child: the parent's files stay the parent's)."""
        self._current = None
        self._files = []
        self.error = ""


class Orphan:
    """A journal file of a process that is gone, locked by this process while it resends it.

    Args:
        path: the file.
        handle: the open file holding the lock.
    """

    def __init__(self, path: Path, handle: BinaryIO) -> None:
        self.path = path
        self._handle = handle
        self.unacknowledged = 0  # batches handed to the producer, not yet reported
        self.read = False  # every batch of the file handed to the producer
        self.failed = False

    def release(self, delete: bool) -> None:
        """Unlock the file, deleting it first when ``delete``."""
        if self._handle.closed:
            return
        if delete:
            self.path.unlink(missing_ok=True)
        self._handle.close()


def other_destination(path: Path, destination: str) -> bool:
    """True for a journal file of another broker or topic than ``destination`` (a spill
    file of the SDK before the journal, named ``<producer id>-<pid>-<n>``, is of none)."""
    first = path.name.split("-", 1)[0]
    return len(first) == len(destination) and first != destination


def orphans(folder: Path, destination: str) -> list[Orphan]:
    """The journal files of ``destination`` in ``folder`` that no live process holds, each
    locked for the caller (a file another process adopts first is skipped)."""
    found: list[Orphan] = []
    try:
        paths = log_files(folder)
    except LocalLogError as error:
        logger.warning("runstream journal: %s", error)
        return found
    for path in paths:
        if not path.name.startswith(f"{destination}-") or writer_alive(path):
            continue
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by Orphan.release
        except OSError:
            continue
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        found.append(Orphan(path, handle))
    return found


def writer_alive(path: Path, this_process: bool = True) -> bool:
    """True when the process named in the file name still runs (its closed files are its
    own to resend; a pid reused by another process only defers the resend); with
    ``this_process`` False, the calling process does not count."""
    parts = path.stem.split("-")
    try:
        pid = int(parts[-2])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return this_process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
