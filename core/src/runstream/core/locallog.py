"""The embedded event log: the one place its file format is written and read.

A local log is a folder of Avro object container files, one per writing process
(``<producer id>.avro``), so parallel workers never share a file. Each record is
``{"run_id": string, "value": bytes}`` where ``value`` is exactly the message a Kafka sink
would produce, so every reader decodes both the same way. A writer appends one container
block per batch and flushes it, so a torn tail (a crash mid-write) never corrupts the blocks
before it; readers stop cleanly at a torn tail.

The same format holds the SDK's spill files (batches that could not reach Kafka yet).

Reading yields :class:`runstream.core.source.Record` with ``partition`` = the file's stable
number (:func:`file_number`, derived from its name) and ``offset`` = the record's index in
the file.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from fastavro import block_reader, parse_schema
from fastavro.write import Writer

from runstream.core.errors import RunstreamError
from runstream.core.source import Record

logger = logging.getLogger(__name__)

SUFFIX = ".avro"
RECORD_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "LogRecord",
    "namespace": "dev.runstream.locallog",
    "doc": "One message of the embedded log: the run id (the Kafka key) and the message bytes.",
    "fields": [{"name": "run_id", "type": "string"}, {"name": "value", "type": "bytes"}],
}
_PARSED = parse_schema(RECORD_SCHEMA)


class LocalLogError(RunstreamError):
    """A local log file could not be created, written or listed; the message names the path."""


def file_number(path: Path | str) -> int:
    """The stable number of a log file: a 63-bit hash of its name (without the suffix).

    It is the ``partition`` of the records read from the file and never changes when other
    files appear or disappear.
    """
    digest = hashlib.blake2b(Path(path).stem.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


class LogWriter:
    """Appends batches to one new log file; one writer per file, held by one process.

    The file is locked (``flock``) while the writer is open, so a resender can tell a live
    file from an abandoned one.

    Args:
        path: the file to create; it must not exist.

    Raises:
        LocalLogError: the file exists or cannot be created.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file: BinaryIO = open(path, "xb")  # noqa: SIM115 - closed by close()
        except OSError as error:
            raise LocalLogError(f"cannot create local log file {path}: {error}") from error
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._writer = Writer(self._file, _PARSED, sync_interval=1 << 30)
        self.records = 0

    def append(self, batch: Iterable[tuple[str, bytes]]) -> int:
        """Write ``(run_id, message)`` pairs as one block and flush it to the OS.

        Returns the number of records written.

        Raises:
            LocalLogError: the write failed (disk full, ...).
        """
        count = 0
        try:
            for run_id, value in batch:
                self._writer.write({"run_id": run_id, "value": value})
                count += 1
            self._writer.flush()
            self._file.flush()
        except OSError as error:
            raise LocalLogError(f"cannot append to local log file {self.path}: {error}") from error
        self.records += count
        return count

    def sync(self) -> None:
        """Make everything appended so far durable (fsync).

        Raises:
            LocalLogError: the fsync failed.
        """
        try:
            os.fsync(self._file.fileno())
        except OSError as error:
            raise LocalLogError(f"cannot fsync local log file {self.path}: {error}") from error

    def close(self, sync: bool = True) -> None:
        """Flush, fsync (unless not ``sync``) and close the file (idempotent; closed even when
        the flush fails).

        Raises:
            OSError: the last flush or the fsync failed (the file is closed all the same).
        """
        if self._file.closed:
            return
        try:
            self._writer.flush()
            self._file.flush()
            if sync:
                os.fsync(self._file.fileno())
        finally:
            self._file.close()


def log_files(folder: Path) -> list[Path]:
    """Every log file in ``folder``, sorted by name (none when the folder does not exist).

    Raises:
        LocalLogError: the folder cannot be listed.
    """
    try:
        return sorted(p for p in folder.iterdir() if p.suffix == SUFFIX and p.is_file())
    except FileNotFoundError:
        return []
    except OSError as error:
        raise LocalLogError(f"cannot list local log folder {folder}: {error}") from error


def is_locked(path: Path) -> bool:
    """True when a live writer holds ``path`` open."""
    try:
        with open(path, "rb") as file:
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(file.fileno(), fcntl.LOCK_UN)
            return False
    except FileNotFoundError:
        return False


def read_file(path: Path, start: int = 0) -> Iterator[Record]:
    """Every whole record of one log file from record index ``start``; stops at a torn tail.

    Raises:
        LocalLogError: the file cannot be opened.
    """
    number = file_number(path)
    try:
        file = open(path, "rb")  # noqa: SIM115 - closed in finally
    except OSError as error:
        raise LocalLogError(f"cannot open local log file {path}: {error}") from error
    index = 0
    try:
        try:
            blocks = block_reader(file)
        except (ValueError, EOFError) as error:  # a header still being written, or torn
            logger.debug("local log %s has no whole header yet: %s", path, error)
            return
        while True:
            try:
                block = next(blocks)
                if index + block.num_records <= start:
                    index += block.num_records
                    continue
                records: list[Any] = list(block)
            except StopIteration:
                return
            except (ValueError, EOFError, OSError) as error:
                logger.debug(
                    "local log %s ends in a torn block after %d records: %s", path, index, error
                )
                return
            for record in records:
                if index >= start:
                    yield Record(number, index, record["run_id"].encode("utf-8"), record["value"])
                index += 1
    finally:
        file.close()


def read_log(folder: Path, positions: Mapping[int, int] | None = None) -> Iterator[Record]:
    """Every whole record of every log file in ``folder``, file by file in name order.

    ``positions`` maps a file number to the index of the next record to read in it (a file
    not named starts at 0); a torn tail ends that file's records cleanly.

    Raises:
        LocalLogError: the folder or a file cannot be read.
    """
    starts = positions or {}
    for path in log_files(folder):
        yield from read_file(path, starts.get(file_number(path), 0))
