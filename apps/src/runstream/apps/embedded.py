"""The embedded mode's pipeline: :func:`process` runs the same compactor as the distributed
mode over the local log (metric points into Parquet, run state snapshots through the one
reducer) and remembers how far it read each file, so every call does only the new work.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from runstream.compactor.snapshots import Snapshots
from runstream.compactor.store import Store
from runstream.compactor.worker import Compactor
from runstream.contract.codec import Codec
from runstream.core.deadletters import FILE_NAME, DeadLetterFile
from runstream.core.filesystem import open_store
from runstream.core.logsource import COMPACTOR_GROUP, LocalLogSource, events_folder
from runstream.core.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessResult:
    """What one :func:`process` call did."""

    records: int
    points: int
    files: int
    merges: int
    dead_letters: int = 0


def process(settings: Settings, group: str = COMPACTOR_GROUP) -> ProcessResult:
    """Fold the local log's new records into the store: metric Parquet files and run state
    snapshots, through the same compactor as the distributed mode. Returns when caught up.

    Raises:
        ConfigError: the tracking URI is not file://.
        LocalLogError: a log file cannot be read.
        CompactorError: the store cannot be written.
    """

    folder = events_folder(settings)
    source = LocalLogSource(folder, group)
    fs, root = open_store(settings)
    store = Store(fs, root)
    codec = Codec()
    worker = Compactor(
        source,
        store,
        codec,
        snapshots=Snapshots(store, codec),
        dead_letters=DeadLetterFile(dead_letter_path(settings)),
        topic=str(folder),
    )
    while worker.step() > 0:
        pass
    worker.flush(force=True)
    stats = worker.stats
    source.close()
    logger.info(
        "processed %d records (%d points) into %d files", stats.records, stats.points, stats.files
    )
    return ProcessResult(stats.records, stats.points, stats.files, stats.merges, stats.skipped)


def dead_letter_path(settings: Settings) -> Path:
    """The embedded mode's dead-letter file: beside the event log's folder."""
    return events_folder(settings).parent / FILE_NAME
