"""The Parquet file format of the store: its columns (:data:`METRIC_SCHEMA`), sort order and
rollups, metric points as Parquet bytes and back. Knows nothing of where files go (that is
:mod:`runstream.contract.layout`). Files are zstd-compressed (metric
files: integer columns delta-encoded, strings dictionary-encoded), with row groups of
:data:`ROW_GROUP_ROWS` rows (DuckDB's own row group size, the unit it reads in parallel)
and statistics on, so DuckDB prunes row groups by key and step.

A metric file carries its own rollup (:func:`rollup_table`) in its footer, under the
key-value metadata key :data:`ROLLUP_METADATA_KEY`: an Arrow IPC stream
(zstd-compressed buffers), base64-encoded so that readers which decode footer values as
text keep working. A reader of a downsample fetches the footer only (:func:`footer_length`,
:func:`read_footer`, :func:`footer_rollup`), and the rollup can never be missing while its
file exists, nor outlive it.
"""

from __future__ import annotations

import base64
import binascii
import io
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from runstream.contract.exceptions import CorruptPartError

Int64Array = npt.NDArray[np.int64]

ROLLUP_METADATA_KEY = "runstream.rollup"
"""The footer key-value metadata key of a metric file's rollup."""
ROLLUP_BLOCK_BITS = 10
"""A rollup row covers the steps [block << bits, (block + 1) << bits): 1,024 steps."""
METRIC_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("step", pa.int64(), nullable=False),
        pa.field("timestamp", pa.int64(), nullable=False),  # ms since the epoch
        pa.field("value", pa.float64(), nullable=False),
        pa.field("producer_id", pa.string(), nullable=False),
        pa.field("sequence", pa.int64(), nullable=False),
        pa.field("partition", pa.int64(), nullable=False),  # a local log file number is 63 bits
        pa.field("offset", pa.int64(), nullable=False),
    ]
)
ROLLUP_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("block", pa.int64(), nullable=False),  # step >> ROLLUP_BLOCK_BITS
        pa.field("count", pa.int64(), nullable=False),  # rows, copies of an event included
        pa.field("first_step", pa.int64(), nullable=False),
        pa.field("min", pa.float64(), nullable=False),  # NaN only if every value is NaN
        pa.field("max", pa.float64(), nullable=False),  # NaN if any value is NaN (as DuckDB)
        pa.field("step", pa.int64(), nullable=False),  # the last point's step, ...
        pa.field("timestamp", pa.int64(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("producer_id", pa.string(), nullable=False),
        pa.field("sequence", pa.int64(), nullable=False),
    ]
)
SORT_KEYS = [("key", "ascending"), ("step", "ascending")]
COMPRESSION = "zstd"

ROW_GROUP_ROWS = 122_880
_INTEGER_COLUMNS = [f.name for f in METRIC_SCHEMA if pa.types.is_integer(f.type)]


@dataclass(slots=True)
class PointChunk:
    """The new metric points of one message, as columns."""

    keys: list[str]
    key_index: npt.NDArray[np.int32]
    steps: Int64Array
    timestamps: Int64Array
    values: npt.NDArray[np.float64]
    producer: str
    sequences: Int64Array
    partition: int
    offset: int

    def __len__(self) -> int:
        return len(self.steps)


@dataclass(frozen=True, slots=True)
class _Points:
    """Metric points as arrays sorted by (key, step): strings as codes into sorted names
    (so comparing codes compares the strings)."""

    key_names: list[str] | pa.Array
    key_codes: npt.NDArray[np.int32]
    steps: npt.NDArray[np.int64]
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    producer_names: list[str] | pa.Array
    producer_codes: npt.NDArray[np.int32]
    sequences: npt.NDArray[np.int64]


def points_table(chunks: Sequence[PointChunk]) -> pa.Table:
    """One table of the points of ``chunks``, with METRIC_SCHEMA, sorted by (key, step)
    (ties in read order, so the same chunks always give the same bytes)."""
    return points_and_rollup(chunks, rollup=False)[0]


def points_and_rollup(
    chunks: Sequence[PointChunk], rollup: bool = True
) -> tuple[pa.Table, pa.Table]:
    """:func:`points_table` of ``chunks`` and its :func:`rollup_table` (an empty rollup
    unless ``rollup``), from the same sorted arrays."""
    key_ids: dict[str, int] = {}
    key_parts = []
    for chunk in chunks:
        remap = np.fromiter(
            (key_ids.setdefault(key, len(key_ids)) for key in chunk.keys), np.int32, len(chunk.keys)
        )
        key_parts.append(remap[chunk.key_index] if len(remap) else chunk.key_index)
    producer_ids: dict[str, int] = {}
    producer_parts = [
        np.full(len(chunk), producer_ids.setdefault(chunk.producer, len(producer_ids)), np.int32)
        for chunk in chunks
    ]
    key_names, key_rank = _ranked(list(key_ids))
    producer_names, producer_rank = _ranked(list(producer_ids))
    key_codes = key_rank[_concat(key_parts, np.int32)]
    steps = _concat([c.steps for c in chunks], np.int64)
    order = np.lexsort((steps, key_codes))  # stable: ties keep read order
    points = _Points(
        key_names,
        key_codes[order],
        steps[order],
        _concat([c.timestamps for c in chunks], np.int64)[order],
        _concat([c.values for c in chunks], np.float64)[order],
        producer_names,
        producer_rank[_concat(producer_parts, np.int32)][order],
        _concat([c.sequences for c in chunks], np.int64)[order],
    )
    columns = [
        _strings(points.key_codes, key_names),
        pa.array(points.steps),
        pa.array(points.timestamps),
        pa.array(points.values),
        _strings(points.producer_codes, producer_names),
        pa.array(points.sequences),
        pa.array(
            _concat([np.full(len(c), c.partition, np.int64) for c in chunks], np.int64)[order]
        ),
        pa.array(_concat([np.full(len(c), c.offset, np.int64) for c in chunks], np.int64)[order]),
    ]
    table = pa.Table.from_arrays(columns, schema=METRIC_SCHEMA)
    return table, _rollup(points) if rollup else ROLLUP_SCHEMA.empty_table()


def merge_tables(tables: Sequence[pa.Table], distinct: bool = False) -> pa.Table:
    """The rows of ``tables`` as one table sorted by (key, step, producer_id, sequence),
    each identity (producer_id, sequence) once (the row with the lowest offset kept).

    ``distinct``: the caller knows no identity is in two rows (the tables were built from
    one run buffer's chunks), so the search for repeats is skipped; the result is the same.
    Then, when each key's steps strictly increase from table to table (a run's files in
    order, the usual case), the result is each key's slices of the tables in turn: no sort.
    """
    tables = [t.select(METRIC_SCHEMA.names).cast(METRIC_SCHEMA) for t in tables]
    if distinct:
        apart = _apart_by_key(tables)
        if apart is not None:
            return apart
        joined = _joined_by_key(tables)
        if joined is not None:
            return joined
    table = pa.concat_tables(tables).combine_chunks()
    if table.num_rows == 0:
        return table
    key_names, key_codes = _string_ranks(table["key"])
    producer_names, producer_codes = _string_ranks(table["producer_id"])
    sequences = table["sequence"].to_numpy()
    steps = table["step"].to_numpy()
    offsets = table["offset"].to_numpy()
    if distinct:
        order = np.lexsort((sequences, producer_codes, steps, key_codes))
        return _taken(table, order, key_names, key_codes, producer_names, producer_codes)
    by_identity = np.lexsort((offsets, sequences, producer_codes))
    producers_sorted, sequences_sorted = producer_codes[by_identity], sequences[by_identity]
    repeated = np.zeros(len(by_identity), bool)
    repeated[1:] = (producers_sorted[1:] == producers_sorted[:-1]) & (
        sequences_sorted[1:] == sequences_sorted[:-1]
    )
    keep = by_identity[~repeated]
    order = keep[np.lexsort((sequences[keep], producer_codes[keep], steps[keep], key_codes[keep]))]
    return _taken(table, order, key_names, key_codes, producer_names, producer_codes)


def _apart_by_key(tables: Sequence[pa.Table]) -> pa.Table | None:
    """The rows of sorted ``tables`` as one sorted table, without a sort or a copy per key,
    when no key is in two of them (each table's key range is apart from the others': a
    run of many keys logged in turn). None otherwise."""
    ordered = _apart([t for t in tables if t.num_rows])
    if ordered is None:
        return None
    return pa.concat_tables(ordered)


def _apart(tables: Sequence[pa.Table]) -> list[pa.Table] | None:
    """``tables`` (each sorted by key first) ordered by their first key, if each one's last
    key is less than the next one's first key; None otherwise (or when there are none)."""
    if not tables:
        return None
    bounds = [(t["key"][0].as_py(), t["key"][-1].as_py(), i) for i, t in enumerate(tables)]
    bounds.sort()
    for (_, last, _), (first, _, _) in itertools.pairwise(bounds):
        if not last < first:
            return None
    return [tables[i] for _, _, i in bounds]


_MAX_SLICES = 10_000


def _joined_by_key(tables: Sequence[pa.Table]) -> pa.Table | None:
    """The rows of ``tables`` sorted by (key, step) without a sort: per key (in Arrow's
    string order), its slice of each table in turn. None unless each key's steps strictly
    increase through the slices (then that order is the only sorted one: no tie to break),
    or when there would be more than :data:`_MAX_SLICES` slices (a run of many keys: one
    Arrow table per slice costs kilobytes, the sort of the caller does not)."""
    slices: dict[str, list[pa.Table]] = {}
    last_step: dict[str, int] = {}
    count = 0
    for table in tables:
        if table.num_rows == 0:
            continue
        keys = table["key"].combine_chunks()
        steps = table["step"].to_numpy()
        changes = pc.not_equal(keys[1:], keys[:-1]).to_numpy(zero_copy_only=False)
        bounds = [0, *(np.flatnonzero(changes) + 1).tolist(), table.num_rows]
        count += len(bounds) - 1
        if count > _MAX_SLICES:
            return None
        for start, end in itertools.pairwise(bounds):
            key, part = keys[start].as_py(), steps[start:end]
            if part[0] <= last_step.get(key, part[0] - 1) or bool(np.any(part[1:] <= part[:-1])):
                return None
            last_step[key] = int(part[-1])
            slices.setdefault(key, []).append(table.slice(start, end - start))
    if not slices:
        return None
    return pa.concat_tables(
        [part for key in sorted(slices) for part in slices[key]]
    ).combine_chunks()


def _taken(
    table: pa.Table,
    order: npt.NDArray[np.intp],
    key_names: list[str] | pa.Array,
    key_codes: npt.NDArray[np.int32],
    producer_names: list[str] | pa.Array,
    producer_codes: npt.NDArray[np.int32],
) -> pa.Table:
    """The rows ``order`` of a metric ``table`` (one chunk per column); strings rebuilt
    from their codes, cheaper than taking string columns."""
    columns = [
        _strings(key_codes[order], key_names)
        if name == "key"
        else _strings(producer_codes[order], producer_names)
        if name == "producer_id"
        else pa.array(table[name].to_numpy()[order])
        for name in METRIC_SCHEMA.names
    ]
    return pa.Table.from_arrays(columns, schema=METRIC_SCHEMA)


def encode(table: pa.Table, rollup: pa.Table | None = None) -> bytes:
    """Parquet bytes of a metric ``table`` (zstd, DuckDB-sized row groups, statistics):
    key and producer_id dictionary-encoded, integer columns delta-encoded (sorted steps,
    sequences and offsets: files about 4x smaller, written and read faster than plain).
    ``rollup`` (the table's :func:`rollup_table`) goes into the footer."""
    return encode_table(
        table,
        dictionary=["key", "producer_id"],
        delta=_INTEGER_COLUMNS,
        metadata=None if rollup is None else {ROLLUP_METADATA_KEY: _rollup_text(rollup)},
    )


def encode_table(
    table: pa.Table,
    dictionary: Sequence[str] | bool = True,
    delta: Sequence[str] = (),
    metadata: Mapping[str, str] | None = None,
) -> bytes:
    """Parquet bytes of any ``table`` (zstd, DuckDB-sized row groups, statistics);
    ``dictionary``: dictionary-encode these columns (True: all); ``delta``: write these
    integer columns with DELTA_BINARY_PACKED (not dictionary-encoded); ``metadata``:
    key-value pairs for the footer."""
    sink = io.BytesIO()
    with pq.ParquetWriter(
        sink,
        table.schema,
        compression=COMPRESSION,
        write_statistics=True,
        use_dictionary=dictionary if isinstance(dictionary, bool) else list(dictionary),
        column_encoding=dict.fromkeys(delta, "DELTA_BINARY_PACKED") or None,
    ) as writer:
        writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        if metadata:
            writer.add_key_value_metadata(dict(metadata))
    return sink.getvalue()


def rollup_table(table: pa.Table) -> pa.Table:
    """The rollup (:data:`runstream.contract.layout.ROLLUP_SCHEMA`) of the metric points in ``table``
    (columns key, step, timestamp, value, producer_id, sequence; any row order): one row per
    (key, block of steps), sorted by (key, block). NaN follows DuckDB's order (greater than
    every number), so min/max agree with a DuckDB aggregation over the points."""
    if table.num_rows == 0:
        return ROLLUP_SCHEMA.empty_table()
    key_names, key_codes = _string_ranks(table["key"])
    steps = table["step"].to_numpy()
    if not _sorted_by(key_codes, steps):
        order = np.lexsort((steps, key_codes))
        table, key_codes, steps = table.take(pa.array(order)), key_codes[order], steps[order]
    producer_names, producer_codes = _string_ranks(table["producer_id"])
    return _rollup(
        _Points(
            key_names,
            key_codes,
            steps,
            table["timestamp"].to_numpy(),
            table["value"].to_numpy(),
            producer_names,
            producer_codes,
            table["sequence"].to_numpy(),
        )
    )


def combine_rollups(rollups: Sequence[pa.Table]) -> pa.Table:
    """The rollup of the points of several tables from their rollups (rows of
    :data:`runstream.contract.layout.ROLLUP_SCHEMA`), when no point is in two of the tables: per
    (key, block), counts added, the least first step and min, the greatest max (NaN if any
    is) and the greatest last point by (step, timestamp, producer_id, sequence). Equal to
    :func:`rollup_table` of the tables' rows: a merge needs no second pass over its points."""
    parts = [r.select(ROLLUP_SCHEMA.names).cast(ROLLUP_SCHEMA) for r in rollups]
    apart = _apart([r for r in parts if r.num_rows])
    if apart is not None:  # no (key, block) in two rollups: nothing to combine
        return pa.concat_tables(apart)
    table = pa.concat_tables(parts).combine_chunks()
    if table.num_rows == 0:
        return ROLLUP_SCHEMA.empty_table()
    key_names, key_codes = _string_ranks(table["key"])
    producer_names, producer_codes = _string_ranks(table["producer_id"])
    column = {
        name: table[name].to_numpy() for name in ROLLUP_SCHEMA.names[1:] if name != "producer_id"
    }
    order = np.lexsort(
        (
            column["sequence"],
            producer_codes,
            column["timestamp"],
            column["step"],
            column["block"],
            key_codes,
        )
    )
    key_codes, producer_codes = key_codes[order], producer_codes[order]
    column = {name: values[order] for name, values in column.items()}
    change = np.ones(len(order), bool)
    change[1:] = (key_codes[1:] != key_codes[:-1]) | (column["block"][1:] != column["block"][:-1])
    starts = np.flatnonzero(change)
    last = np.append(starts[1:], len(order)) - 1  # sorted: each group's greatest last point
    return pa.Table.from_arrays(
        [
            _strings(key_codes[starts], key_names),
            pa.array(column["block"][starts]),
            pa.array(np.add.reduceat(column["count"], starts)),
            pa.array(np.minimum.reduceat(column["first_step"], starts)),
            pa.array(np.fmin.reduceat(column["min"], starts)),
            pa.array(np.maximum.reduceat(column["max"], starts)),
            pa.array(column["step"][last]),
            pa.array(column["timestamp"][last]),
            pa.array(column["value"][last]),
            _strings(producer_codes[last], producer_names),
            pa.array(column["sequence"][last]),
        ],
        schema=ROLLUP_SCHEMA,
    )


def _rollup(points: _Points) -> pa.Table:
    """The rollup of ``points`` (sorted by key code, then step)."""
    if len(points.steps) == 0:
        return ROLLUP_SCHEMA.empty_table()
    steps, values = points.steps, points.values
    blocks = steps >> ROLLUP_BLOCK_BITS
    change = np.ones(len(steps), bool)
    change[1:] = (points.key_codes[1:] != points.key_codes[:-1]) | (blocks[1:] != blocks[:-1])
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], len(steps))
    last = _last_points(points, starts, ends)
    return pa.Table.from_arrays(
        [
            _strings(points.key_codes[starts], points.key_names),
            pa.array(blocks[starts]),
            pa.array((ends - starts).astype(np.int64)),
            pa.array(steps[starts]),
            pa.array(np.fmin.reduceat(values, starts)),  # NaN only if all are NaN
            pa.array(np.maximum.reduceat(values, starts)),  # NaN if any is NaN
            pa.array(steps[last]),
            pa.array(points.timestamps[last]),
            pa.array(values[last]),
            _strings(points.producer_codes[last], points.producer_names),
            pa.array(points.sequences[last]),
        ],
        schema=ROLLUP_SCHEMA,
    )


def _rollup_text(rollup: pa.Table) -> str:
    """``rollup`` as footer text: base64 of an Arrow IPC stream with zstd buffers."""
    sink = pa.BufferOutputStream()
    options = ipc.IpcWriteOptions(compression="zstd")
    with ipc.new_stream(sink, rollup.schema, options=options) as writer:
        writer.write_table(rollup)
    return base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")


def footer_length(tail: bytes, path: str) -> int:
    """How many bytes at the end of a Parquet file hold its footer (metadata, its length
    and the magic), read from the file's last bytes ``tail`` (at least 8).

    Raises:
        CorruptPartError: ``tail`` does not end a Parquet file.
    """
    if len(tail) < 8 or tail[-4:] != b"PAR1":
        raise CorruptPartError("not a Parquet file (no PAR1 magic at its end)", path)
    return int.from_bytes(tail[-8:-4], "little") + 8


def read_footer(tail: bytes, path: str) -> pq.FileMetaData:
    """The metadata of a Parquet file from its last bytes ``tail`` (at least
    :func:`footer_length` of them; the whole file will do).

    Raises:
        CorruptPartError: ``tail`` does not hold a readable footer.
    """
    if len(tail) < footer_length(tail, path):
        raise CorruptPartError(f"footer longer than the {len(tail)} bytes read", path)
    try:
        return pq.read_metadata(pa.BufferReader(tail))
    except (pa.ArrowInvalid, OSError) as error:
        raise CorruptPartError(f"unreadable Parquet footer: {error}", path) from error


def footer_rollup(metadata: pq.FileMetaData, path: str) -> pa.Table | None:
    """The rollup (:data:`runstream.contract.layout.ROLLUP_SCHEMA`) a metric file's footer carries,
    or None for a file written without one.

    Raises:
        CorruptPartError: the footer's rollup cannot be decoded.
    """
    text = (metadata.metadata or {}).get(ROLLUP_METADATA_KEY.encode())
    if text is None:
        return None
    try:
        with ipc.open_stream(pa.BufferReader(base64.b64decode(text, validate=True))) as reader:
            table = reader.read_all()
        return table.select(ROLLUP_SCHEMA.names).cast(ROLLUP_SCHEMA)
    except (binascii.Error, pa.ArrowException, KeyError) as error:
        raise CorruptPartError(f"unreadable rollup in the footer: {error}", path) from error


def _sorted_by(codes: npt.NDArray[np.int32], steps: npt.NDArray[np.int64]) -> bool:
    """Whether rows are sorted by (code, step)."""
    if len(steps) < 2:
        return True
    up = codes[1:] > codes[:-1]
    return bool(np.all(up | ((codes[1:] == codes[:-1]) & (steps[1:] >= steps[:-1]))))


def _last_points(
    points: _Points, starts: npt.NDArray[np.intp], ends: npt.NDArray[np.intp]
) -> npt.NDArray[np.intp]:
    """Per group of rows [start, end) sorted by step: the row of the greatest (step,
    timestamp, producer_id, sequence). Only groups whose greatest step is repeated need a
    look beyond the group's last row."""
    steps = points.steps
    last = ends - 1
    tied = np.flatnonzero((ends - starts > 1) & (steps[last] == steps[np.maximum(last - 1, 0)]))
    for group in tied:
        end = int(ends[group])
        first = int(starts[group]) + int(
            np.searchsorted(steps[starts[group] : end], steps[end - 1])
        )
        last[group] = max(
            range(first, end),
            key=lambda i: (
                points.timestamps[i],
                points.producer_codes[i],  # ranks: their order is the ids' order
                points.sequences[i],
            ),
        )
    return last


def decode(data: bytes, path: str, columns: Sequence[str] | None = None) -> pa.Table:
    """The metric table in Parquet bytes ``data`` read from ``path`` (for messages),
    optionally only ``columns``.

    Raises:
        CorruptPartError: the bytes are not Parquet or lack a metric column.
    """
    return decode_table(data, path, columns or METRIC_SCHEMA.names)


def decode_table(data: bytes, path: str, columns: Sequence[str]) -> pa.Table:
    """The ``columns`` of the table in Parquet bytes ``data`` read from ``path``.

    Raises:
        CorruptPartError: the bytes are not Parquet or lack one of ``columns``.
    """
    try:
        table = pq.read_table(io.BytesIO(data), columns=list(columns))
    except (pa.ArrowInvalid, OSError, KeyError) as error:
        raise CorruptPartError(f"not a readable Parquet file: {error}", path) from error
    missing = set(columns) - set(table.column_names)
    if missing:
        raise CorruptPartError(f"file lacks columns {sorted(missing)}", path)
    return table


def _ranked(names: list[str]) -> tuple[list[str], npt.NDArray[np.int32]]:
    """``names`` sorted (code point order = UTF-8 byte order = Arrow's string order), and
    for each original index its rank."""
    order = sorted(range(len(names)), key=names.__getitem__)
    rank = np.empty(len(names), np.int32)
    rank[order] = np.arange(len(names), dtype=np.int32)
    return [names[i] for i in order], rank


def _string_ranks(column: pa.ChunkedArray) -> tuple[pa.Array, npt.NDArray[np.int32]]:
    """The distinct values of a string ``column``, sorted (an Arrow array: a million keys
    never become Python strings), and for each value its rank."""
    encoded = pc.dictionary_encode(column.combine_chunks())
    dictionary = encoded.dictionary
    order = pc.array_sort_indices(dictionary).to_numpy()
    rank = np.empty(len(dictionary), np.int32)
    rank[order] = np.arange(len(dictionary), dtype=np.int32)
    names = dictionary.take(pa.array(order))
    return names, np.asarray(rank[encoded.indices.to_numpy()], np.int32)


def _strings(codes: npt.NDArray[np.int32], names: list[str] | pa.Array) -> pa.Array:
    """A string array of ``names[codes]``."""
    if not isinstance(names, pa.Array):
        names = pa.array(names, pa.string())
    return names.take(pa.array(codes))


def _concat(parts: Sequence[np.ndarray], dtype: type) -> np.ndarray:
    if not parts:
        return np.empty(0, dtype)
    return np.concatenate(parts) if len(parts) > 1 else parts[0]
