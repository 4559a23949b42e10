"""The compacted side: listing a store's metric files and opening them as Arrow datasets.

Listings always go to the server (the fsspec listing cache is dropped first), so a file the
compactor wrote a moment ago is seen. Only the live files (:func:`compactor.layout.live_files`)
are read: files a merged file covers are hidden even before they are deleted.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem

from compactor.layout import METRIC_SCHEMA, METRICS_DIR, live_files, parse_part_name, run_dir

RUN_PARTITIONING = ds.partitioning(pa.schema([("run_id", pa.string())]), flavor="hive")


@dataclass(frozen=True, slots=True)
class MetricFile:
    """One live metric file: its path, run and the offsets of one partition it covers."""

    path: str
    run_id: str
    partition: int
    first_offset: int
    last_offset: int


def run_files(fs: AbstractFileSystem, root: str, run_id: str) -> list[MetricFile]:
    """The live metric files of one run, in name order (none if the run has no folder).

    Raises:
        UnsafeRunIdError: ``run_id`` is not a safe path segment.
    """
    folder = run_dir(root, run_id)
    fs.invalidate_cache(folder)
    try:
        names = fs.ls(folder, detail=False)
    except FileNotFoundError:
        return []
    return _files(run_id, names)


def all_files(fs: AbstractFileSystem, root: str) -> list[MetricFile]:
    """The live metric files of every run."""
    base = f"{root}/{METRICS_DIR}"
    fs.invalidate_cache(base)
    found: list[MetricFile] = []
    by_run: dict[str, list[str]] = {}
    for name in fs.find(base):
        folder = name.rsplit("/", 2)
        if len(folder) == 3 and folder[1].startswith("run_id="):
            by_run.setdefault(folder[1][len("run_id=") :], []).append(name)
    for run_id, names in sorted(by_run.items()):
        found.extend(_files(run_id, names))
    return found


def _files(run_id: str, names: Iterable[str]) -> list[MetricFile]:
    files = []
    for name in live_files(names):
        span = parse_part_name(name)
        if span is not None:
            files.append(MetricFile(name, run_id, *span))
    return files


def watermarks(files: Iterable[MetricFile]) -> dict[str, dict[int, int]]:
    """Per run, per partition: the greatest offset the files cover."""
    marks: dict[str, dict[int, int]] = {}
    for file in files:
        run = marks.setdefault(file.run_id, {})
        run[file.partition] = max(run.get(file.partition, -1), file.last_offset)
    return marks


def run_watermarks(files: Iterable[MetricFile]) -> Mapping[int, int]:
    """Per partition: the greatest offset the files (of one run) cover."""
    marks: dict[int, int] = {}
    for file in files:
        marks[file.partition] = max(marks.get(file.partition, -1), file.last_offset)
    return marks


def store_dataset(fs: AbstractFileSystem, root: str, files: list[MetricFile]) -> ds.Dataset:
    """The files of many runs as one Arrow dataset: the metric schema plus ``run_id`` (from
    the hive folder name)."""
    return ds.dataset(
        [file.path for file in files],
        schema=METRIC_SCHEMA.append(pa.field("run_id", pa.string())),
        format="parquet",
        filesystem=fs,
        partitioning=RUN_PARTITIONING,
        partition_base_dir=f"{root}/{METRICS_DIR}",
    )


POINT_COLUMNS = ("step", "timestamp", "value", "producer_id", "sequence")
"""The columns a history query reads."""

POINTS_SCHEMA = pa.schema(
    [
        ("step", pa.int64()),
        ("timestamp", pa.int64()),
        ("value", pa.float64()),
        ("producer_id", pa.dictionary(pa.int32(), pa.string())),
        ("sequence", pa.int64()),
    ]
)
"""The points of one (run, key) as a history query holds them: a run has few producers, so
their ids are dictionary-encoded (10M points with 32-character ids: 40 MB, not 360 MB)."""


def as_points(table: pa.Table) -> pa.Table:
    """``table``'s :data:`POINT_COLUMNS` in the :data:`POINTS_SCHEMA` types."""
    producers = table["producer_id"]
    if not pa.types.is_dictionary(producers.type):
        producers = pc.dictionary_encode(producers)
    columns = [table[name] for name in POINT_COLUMNS]
    columns[3] = producers.cast(POINTS_SCHEMA.field("producer_id").type)
    return pa.Table.from_arrays(columns, schema=POINTS_SCHEMA)


class PointCache:
    """Decoded points of (file, key), least recently used dropped past ``max_bytes``.

    A metric file never changes once written (its name is its offset range; a rewrite after a
    crash writes the same rows), so its decoded columns can be kept. Thread-safe.

    Args:
        fs: the store's filesystem.
        max_bytes: memory budget (0 disables caching).
        threads: files read in parallel on a miss.
    """

    def __init__(self, fs: AbstractFileSystem, max_bytes: int = 1 << 30, threads: int = 8) -> None:
        self._fs = fs
        self._max_bytes = max_bytes
        self._threads = threads
        self._lock = threading.Lock()
        self._tables: OrderedDict[tuple[str, str], pa.Table] = OrderedDict()
        self._bytes = 0

    def points(self, files: Sequence[MetricFile], key: str) -> list[pa.Table]:
        """The rows of ``key`` in each file (columns :data:`POINT_COLUMNS`), in file order."""
        found: dict[str, pa.Table] = {}
        with self._lock:
            for file in files:
                table = self._tables.get((file.path, key))
                if table is not None:
                    self._tables.move_to_end((file.path, key))
                    found[file.path] = table
        missing = [file.path for file in files if file.path not in found]
        if missing:
            with ThreadPoolExecutor(max_workers=min(self._threads, len(missing))) as pool:
                for path, table in zip(
                    missing, pool.map(lambda p: self._read(p, key), missing), strict=True
                ):
                    found[path] = table
                    self._keep((path, key), table)
        return [found[file.path] for file in files]

    def _read(self, path: str, key: str) -> pa.Table:
        table = pq.read_table(
            path,
            filesystem=self._fs,
            columns=list(POINT_COLUMNS),
            filters=[("key", "=", key)],
            read_dictionary=["producer_id"],
        )
        return as_points(table)

    def _keep(self, entry: tuple[str, str], table: pa.Table) -> None:
        if table.nbytes > self._max_bytes:
            return
        with self._lock:
            if entry in self._tables:
                return
            self._tables[entry] = table
            self._bytes += table.nbytes
            while self._bytes > self._max_bytes:
                _, dropped = self._tables.popitem(last=False)
                self._bytes -= dropped.nbytes
