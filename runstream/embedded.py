"""The embedded mode's pipeline: the local log as an event source, and ``process``.

With a ``file://`` tracking URI the SDK appends batches to local log files
(:mod:`runstream.locallog`); :func:`process` runs the same compactor as the distributed mode
over them (metric points into Parquet, run state snapshots through the one reducer) and
remembers how far it read each file, so every call does only the new work.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from runstream.errors import RunstreamError
from runstream.locallog import read_log
from runstream.settings import Settings
from runstream.source import Record

logger = logging.getLogger(__name__)

EVENTS_DIR = "events"
POSITIONS_DIR = "positions"


class EmbeddedError(RunstreamError):
    """The embedded pipeline failed; the message names the folder or file."""


def events_folder(settings: Settings) -> Path:
    """The local log folder of a file:// tracking URI.

    Raises:
        ConfigError: the tracking URI is not file://.
    """
    return settings.tracking_uri.path / EVENTS_DIR


class LocalLogSource:
    """An :class:`~runstream.source.EventSource` over a local log folder.

    Positions (file number -> next record index) are committed to
    ``<tracking folder>/positions/<group>.json``, written atomically, so a second reader of
    the same group resumes where the first committed.

    Args:
        folder: the log folder (``<tracking folder>/events``).
        group: the reader's name; each group has its own positions.
    """

    def __init__(self, folder: Path, group: str) -> None:
        self.folder = folder
        self._positions_file = folder.parent / POSITIONS_DIR / f"{group}.json"
        self._committed = self._load()
        self._read: dict[int, int] = dict(self._committed)
        self._pending: Iterator[Record] | None = None

    def _load(self) -> dict[int, int]:
        try:
            raw = json.loads(self._positions_file.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise EmbeddedError(f"cannot read positions {self._positions_file}: {error}") from error
        return {int(number): int(offset) for number, offset in raw.items()}

    def poll(self, max_records: int, timeout: float) -> list[Record]:
        """Up to ``max_records`` records after the last read ones; [] when none are new.

        Raises:
            LocalLogError: a log file cannot be read.
        """
        if self._pending is None:
            self._pending = read_log(self.folder, self._read)
        records: list[Record] = []
        for record in self._pending:
            records.append(record)
            self._read[record.partition] = record.offset + 1
            if len(records) >= max_records:
                return records
        self._pending = None  # exhausted: the next poll looks for new records
        return records

    def rewind(self) -> None:
        """Read every file from its beginning again (committed positions are kept until the
        next commit)."""
        self._read = {}
        self._pending = None

    def commit(self, positions: Mapping[int, int]) -> None:
        """Durably remember ``file number -> next record index`` (merged with earlier ones).

        Raises:
            EmbeddedError: the positions file cannot be written.
        """
        self._committed.update(positions)
        target = self._positions_file
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_suffix(".tmp")
            temporary.write_text(json.dumps(self._committed, sort_keys=True), "utf-8")
            os.replace(temporary, target)
        except OSError as error:
            raise EmbeddedError(f"cannot write positions {target}: {error}") from error

    def committed(self) -> dict[int, int]:
        """The committed positions."""
        return dict(self._committed)

    def close(self) -> None:
        """Nothing to release (positions are written on commit)."""
        self._pending = None


@dataclass(frozen=True)
class ProcessResult:
    """What one :func:`process` call did."""

    records: int
    points: int
    files: int
    merges: int


def process(settings: Settings, group: str = "compactor") -> ProcessResult:
    """Fold the local log's new records into the store: metric Parquet files and run state
    snapshots, through the same compactor as the distributed mode. Returns when caught up.

    Raises:
        ConfigError: the tracking URI is not file://.
        LocalLogError: a log file cannot be read.
        CompactorError: the store cannot be written.
    """
    from compactor.snapshots import Snapshots
    from compactor.store import Store
    from compactor.worker import Compactor
    from runstream.filesystem import open_store
    from schemas.codec import Codec

    source = LocalLogSource(events_folder(settings), group)
    fs, root = open_store(settings)
    store = Store(fs, root)
    codec = Codec()
    worker = Compactor(source, store, codec, snapshots=Snapshots(store, codec))
    while worker.step() > 0:
        pass
    worker.flush(force=True)
    stats = worker.stats
    source.close()
    logger.info(
        "processed %d records (%d points) into %d files", stats.records, stats.points, stats.files
    )
    return ProcessResult(stats.records, stats.points, stats.files, stats.merges)
