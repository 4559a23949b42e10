"""The embedded mode's pipeline: the local log as an event source, and ``process``.

With a ``file://`` tracking URI the SDK appends batches to local log files
(:mod:`runstream.core.locallog`); :func:`process` runs the same compactor as the distributed mode
over them (metric points into Parquet, run state snapshots through the one reducer) and
remembers how far it read each file, so every call does only the new work.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from runstream.core.errors import RunstreamError
from runstream.core.locallog import read_log
from runstream.core.settings import Settings
from runstream.core.source import Record

logger = logging.getLogger(__name__)

EVENTS_DIR = "events"
POSITIONS_DIR = "positions"
COMPACTOR_GROUP = "compactor"
"""The group name of the embedded compactor (``runstream process``): its positions are
``<tracking folder>/positions/compactor.json``, where the query's tail starts."""


class EmbeddedError(RunstreamError):
    """The embedded pipeline failed; the message names the folder or file."""


def events_folder(settings: Settings) -> Path:
    """The local log folder of a file:// tracking URI.

    Raises:
        ConfigError: the tracking URI is not file://.
    """
    return settings.tracking_uri.path / EVENTS_DIR


def positions_file(folder: Path, group: str) -> Path:
    """The file holding the committed positions of ``group`` over the log folder ``folder``."""
    return folder.parent / POSITIONS_DIR / f"{group}.json"


def read_positions(path: Path) -> dict[int, int]:
    """The positions (file number -> next record index) committed in ``path`` ({} when it
    does not exist).

    Raises:
        EmbeddedError: the file cannot be read or is not a positions file.
    """
    try:
        raw = json.loads(path.read_text("utf-8"))
        return {int(number): int(offset) for number, offset in raw.items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, AttributeError) as error:
        raise EmbeddedError(f"cannot read positions {path}: {error}") from error


class LocalLogSource:
    """An :class:`~runstream.core.source.EventSource` over a local log folder.

    Positions (file number -> next record index) are committed to
    ``<tracking folder>/positions/<group>.json``, written atomically, so a second reader of
    the same group resumes where the first committed.

    Args:
        folder: the log folder (``<tracking folder>/events``).
        group: the reader's name; each group has its own positions.
    """

    def __init__(self, folder: Path, group: str) -> None:
        self.folder = folder
        self._positions_file = positions_file(folder, group)
        self._committed = self._load()
        self._read: dict[int, int] = dict(self._committed)
        self._pending: Iterator[Record] | None = None

    def _load(self) -> dict[int, int]:
        return read_positions(self._positions_file)

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
