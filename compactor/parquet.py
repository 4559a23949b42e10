"""The format: metric points as Parquet bytes, and back. Knows nothing of where they go.

Columns and sort order come from :mod:`compactor.layout`. Files are zstd-compressed, with
row groups of :data:`ROW_GROUP_ROWS` rows (DuckDB's own row group size, the unit it reads in
parallel) and statistics on, so DuckDB prunes row groups by key and step.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from compactor.buffer import PointChunk
from compactor.exceptions import CorruptPartError
from compactor.layout import COMPRESSION, METRIC_SCHEMA, SORT_KEYS

ROW_GROUP_ROWS = 122_880
_IDENTITY = [("producer_id", "ascending"), ("sequence", "ascending")]


def points_table(chunks: Sequence[PointChunk]) -> pa.Table:
    """One table of the points of ``chunks``, with METRIC_SCHEMA, sorted by (key, step)
    (ties in read order, so the same chunks always give the same bytes)."""
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
    keys = pa.DictionaryArray.from_arrays(
        pa.array(_concat(key_parts, np.int32)), pa.array(list(key_ids), pa.string())
    ).cast(pa.string())
    producers = pa.DictionaryArray.from_arrays(
        pa.array(_concat(producer_parts, np.int32)), pa.array(list(producer_ids), pa.string())
    ).cast(pa.string())
    table = pa.Table.from_arrays(
        [
            keys,
            pa.array(_concat([c.steps for c in chunks], np.int64)),
            pa.array(_concat([c.timestamps for c in chunks], np.int64)),
            pa.array(_concat([c.values for c in chunks], np.float64)),
            producers,
            pa.array(_concat([c.sequences for c in chunks], np.int64)),
            pa.array(_concat([np.full(len(c), c.partition, np.int64) for c in chunks], np.int64)),
            pa.array(_concat([np.full(len(c), c.offset, np.int64) for c in chunks], np.int64)),
        ],
        schema=METRIC_SCHEMA,
    )
    return table.sort_by(SORT_KEYS)


def merge_tables(tables: Sequence[pa.Table]) -> pa.Table:
    """The rows of ``tables`` as one table sorted by (key, step), each identity
    (producer_id, sequence) once (the row with the lowest offset kept)."""
    table = pa.concat_tables([t.select(METRIC_SCHEMA.names).cast(METRIC_SCHEMA) for t in tables])
    table = table.sort_by([*_IDENTITY, ("offset", "ascending")])
    if table.num_rows > 1:
        producers = table["producer_id"].combine_chunks()
        sequences = table["sequence"].combine_chunks()
        same = pc.and_(
            pc.equal(producers[1:], producers[:-1]), pc.equal(sequences[1:], sequences[:-1])
        )
        keep = pa.concat_arrays([pa.array([True]), pc.invert(same)])
        table = table.filter(keep)
    return table.sort_by([*SORT_KEYS, *_IDENTITY])


def encode(table: pa.Table) -> bytes:
    """Parquet bytes of a metric ``table`` (zstd, DuckDB-sized row groups, statistics)."""
    return encode_table(table, dictionary=["key", "producer_id"])


def encode_table(table: pa.Table, dictionary: Sequence[str] | bool = True) -> bytes:
    """Parquet bytes of any ``table`` (zstd, DuckDB-sized row groups, statistics);
    ``dictionary``: dictionary-encode these columns (True: all)."""
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression=COMPRESSION,
        row_group_size=ROW_GROUP_ROWS,
        write_statistics=True,
        use_dictionary=dictionary if isinstance(dictionary, bool) else list(dictionary),
    )
    return sink.getvalue()


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


def _concat(parts: Sequence[np.ndarray], dtype: type) -> np.ndarray:
    if not parts:
        return np.empty(0, dtype)
    return np.concatenate(parts) if len(parts) > 1 else parts[0]
