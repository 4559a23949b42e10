"""The compacted side: listing a store's metric files and opening them as Arrow datasets.

Listings always go to the server (the fsspec listing cache is dropped first), so a file the
compactor wrote a moment ago is seen. Only the live files (:func:`runstream.contract.layout.live_files`)
are read: files a merged file covers are hidden even before they are deleted.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem

from runstream.contract.exceptions import CorruptPartError
from runstream.contract.layout import METRICS_DIR, live_files, parse_part_name, run_dir
from runstream.contract.parquet import (
    METRIC_SCHEMA,
    footer_length,
    footer_rollup,
    read_footer,
    rollup_table,
)
from runstream.query.exceptions import StoreReadError

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


FOOTER_READ_BYTES = 64 * 1024
"""The last bytes of a metric file fetched to read its rollup: the footer of most files
(Arrow's own first guess); a longer footer costs a second request for the whole file."""

POINT_COLUMNS = ("step", "timestamp", "value", "producer_id", "sequence")
"""The columns a history query reads when it must sort or deduplicate."""

VALUE_COLUMNS = ("step", "timestamp", "value")
"""The columns a history query reads when steps strictly increase (the usual case)."""

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

VALUES_SCHEMA = pa.schema(POINTS_SCHEMA.field(name) for name in VALUE_COLUMNS)
"""The points without their identities."""


def as_points(table: pa.Table) -> pa.Table:
    """``table``'s :data:`POINT_COLUMNS` in the :data:`POINTS_SCHEMA` types."""
    producers = table["producer_id"]
    if not pa.types.is_dictionary(producers.type):
        producers = pc.dictionary_encode(producers)
    columns = [table[name] for name in POINT_COLUMNS]
    columns[3] = producers.cast(POINTS_SCHEMA.field("producer_id").type)
    return pa.Table.from_arrays(columns, schema=POINTS_SCHEMA)


def key_rows(data: bytes, path: str, key: str, columns: Sequence[str]) -> pa.Table:
    """The ``columns`` of the rows of ``key`` in the metric file bytes ``data``:
    only the row groups whose key statistics admit ``key`` are decoded, and the key column
    only where a row group holds other keys too.

    Raises:
        StoreReadError: the bytes are not a readable Parquet file with these columns.
    """
    try:
        parquet = pq.ParquetFile(io.BytesIO(data), read_dictionary=["producer_id"])
        groups, mixed = _key_groups(parquet.metadata, key)
        wanted = [*columns, "key"] if mixed else list(columns)
        table = parquet.read_row_groups(groups, columns=wanted)
    except (pa.ArrowInvalid, OSError, KeyError, ValueError) as error:
        raise StoreReadError(f"not a readable metric file: {error}", path) from error
    if mixed:
        table = table.filter(pc.equal(table["key"], key)).select(list(columns))
    return table


def _key_groups(metadata: pq.FileMetaData, key: str) -> tuple[list[int], bool]:
    """The row groups that may hold ``key``, and whether any of them holds another key."""
    column = metadata.schema.names.index("key")
    groups, mixed = [], False
    for index in range(metadata.num_row_groups):
        stats = metadata.row_group(index).column(column).statistics
        if stats is None or not stats.has_min_max:
            groups.append(index)
            mixed = True
        elif stats.min <= key <= stats.max:
            groups.append(index)
            mixed = mixed or stats.min != stats.max
    return groups, mixed


class PointCache:
    """Decoded points and rollups of (file, key), least recently used dropped past
    ``max_bytes``.

    A metric file never changes once written (its name is its offset range; a rewrite after a
    crash writes the same rows), so its decoded columns can be kept. A miss fetches each file
    whole in one request (on ``threads`` threads at once) and decodes only the columns and
    row groups the query needs. Thread-safe.

    Args:
        fs: the store's filesystem.
        root: the store's root path in ``fs``.
        max_bytes: memory budget (0 disables caching).
        threads: files fetched and decoded in parallel on a miss.
    """

    def __init__(
        self, fs: AbstractFileSystem, root: str, max_bytes: int = 1 << 30, threads: int = 8
    ) -> None:
        self._fs = fs
        self._root = root
        self._max_bytes = max_bytes
        self._threads = threads
        self._lock = threading.Lock()
        self._tables: OrderedDict[tuple[str, str, str], pa.Table] = OrderedDict()
        self._bytes = 0

    def points(
        self, files: Sequence[MetricFile], key: str, identities: bool = True
    ) -> list[pa.Table]:
        """The rows of ``key`` in each file, in file order: columns :data:`POINT_COLUMNS`
        (:data:`POINTS_SCHEMA`), or only :data:`VALUE_COLUMNS` without ``identities``.

        Raises:
            StoreReadError: a file is not a readable metric file.
        """
        if identities:
            return self._get(files, key, ("points",), self._read_points)
        tables = self._get(files, key, ("points", "values"), self._read_values)
        return [table.select(list(VALUE_COLUMNS)) for table in tables]

    def rollups(self, files: Sequence[MetricFile], key: str) -> list[pa.Table]:
        """The rollup rows (:data:`runstream.contract.layout.ROLLUP_SCHEMA`) of ``key`` in each file,
        in file order: from the file's rollup, or computed from the file if it has none.

        Raises:
            StoreReadError: a file is not a readable metric or rollup file.
        """
        return self._get(files, key, ("rollup",), self._read_rollup)

    def _get(
        self,
        files: Sequence[MetricFile],
        key: str,
        kinds: Sequence[str],
        read: Callable[[MetricFile, str], pa.Table],
    ) -> list[pa.Table]:
        found: dict[str, pa.Table] = {}
        with self._lock:
            for file in files:
                for kind in kinds:
                    table = self._tables.get((file.path, key, kind))
                    if table is not None:
                        self._tables.move_to_end((file.path, key, kind))
                        found[file.path] = table
                        break
        missing = [file for file in files if file.path not in found]
        if len(missing) == 1:
            found[missing[0].path] = self._keep(
                (missing[0].path, key, kinds[-1]), read(missing[0], key)
            )
        elif missing:
            with ThreadPoolExecutor(max_workers=min(self._threads, len(missing))) as pool:
                for file, table in zip(
                    missing, pool.map(lambda f: read(f, key), missing), strict=True
                ):
                    found[file.path] = self._keep((file.path, key, kinds[-1]), table)
        return [found[file.path] for file in files]

    def _fetch(self, path: str, start: int | None = None) -> bytes:
        """The bytes of ``path`` (from ``start``; negative: that many last bytes)."""
        try:
            return bytes(self._fs.cat_file(path, start=start))
        except FileNotFoundError:
            raise
        except OSError as error:
            raise StoreReadError(f"cannot read: {error!r}", path) from error

    def _read_points(self, file: MetricFile, key: str) -> pa.Table:
        return as_points(key_rows(self._fetch(file.path), file.path, key, POINT_COLUMNS))

    def _read_values(self, file: MetricFile, key: str) -> pa.Table:
        table = key_rows(self._fetch(file.path), file.path, key, VALUE_COLUMNS)
        return table.cast(VALUES_SCHEMA)

    def _read_rollup(self, file: MetricFile, key: str) -> pa.Table:
        tail = self._fetch(file.path, start=-FOOTER_READ_BYTES)
        try:
            if footer_length(tail, file.path) > len(tail):  # a footer past the first guess
                tail = self._fetch(file.path)
            rollup = footer_rollup(read_footer(tail, file.path), file.path)
        except CorruptPartError as error:
            raise StoreReadError(error.reason, file.path) from error
        if rollup is None:  # a file written before rollups: compute it from its points
            raw = key_rows(self._fetch(file.path), file.path, key, POINT_COLUMNS)
            keys = pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(raw.num_rows, np.int32)), pa.array([key], pa.string())
            )
            return rollup_table(raw.append_column("key", keys))
        return rollup.filter(pc.equal(rollup["key"], key))

    def _keep(self, entry: tuple[str, str, str], table: pa.Table) -> pa.Table:
        if table.nbytes > self._max_bytes:
            return table
        with self._lock:
            if entry in self._tables:
                return table
            self._tables[entry] = table
            self._bytes += table.nbytes
            while self._bytes > self._max_bytes:
                _, dropped = self._tables.popitem(last=False)
                self._bytes -= dropped.nbytes
        return table
