"""The format's sorts and merge against pyarrow's own sort on the layout's sort keys."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from runstream.contract.parquet import (
    METRIC_SCHEMA,
    SORT_KEYS,
    PointChunk,
    _joined_by_key,
    combine_rollups,
    merge_tables,
    points_and_rollup,
    points_table,
    rollup_table,
)


def chunk(
    keys: list[str],
    key_index: list[int],
    steps: list[int],
    producer: str,
    offset: int,
    first_sequence: int,
) -> PointChunk:
    n = len(steps)
    return PointChunk(
        keys,
        np.array(key_index, np.int32),
        np.array(steps, np.int64),
        np.arange(n, dtype=np.int64) + 1000,
        np.arange(n, dtype=np.float64) / 4,
        producer,
        np.arange(first_sequence, first_sequence + n, dtype=np.int64),
        2,
        offset,
    )


def unsorted(chunks: list[PointChunk]) -> pa.Table:
    rows = []
    for c in chunks:
        for j in range(len(c)):
            rows.append(
                {
                    "key": c.keys[c.key_index[j]],
                    "step": int(c.steps[j]),
                    "timestamp": int(c.timestamps[j]),
                    "value": float(c.values[j]),
                    "producer_id": c.producer,
                    "sequence": int(c.sequences[j]),
                    "partition": c.partition,
                    "offset": c.offset,
                }
            )
    return pa.Table.from_pylist(rows, schema=METRIC_SCHEMA)


CHUNKS = [
    chunk(["zeta", "Äpfel", "a"], [0, 1, 2, 0, 1, 2], [5, 5, 5, 1, 1, 1], "q", 7, 0),
    chunk(["a", "é", "zeta"], [0, 1, 2, 0], [1, 3, 0, 1], "p", 8, 10),  # ties with chunk 1
    chunk(["b"], [0, 0, 0], [-(2**40), 2**40, 0], "q", 9, 6),
]


def test_points_table_sorts_like_pyarrow_on_the_layout_keys_ties_in_read_order() -> None:
    expected = unsorted(CHUNKS).sort_by(SORT_KEYS)  # pyarrow's sort is stable
    assert points_table(CHUNKS).equals(expected)


@pytest.mark.parametrize("distinct", [False, True])
def test_merge_sorts_by_key_step_identity(distinct: bool) -> None:
    tables = [points_table(CHUNKS[:1]), points_table(CHUNKS[1:])]
    expected = unsorted(CHUNKS).sort_by(
        [*SORT_KEYS, ("producer_id", "ascending"), ("sequence", "ascending")]
    )
    assert merge_tables(tables, distinct=distinct).equals(expected)


@pytest.mark.parametrize(
    "later_steps",
    [[3, 4, 9], [1, 4, 9], [3, 3, 9]],
    ids=["steps go on: joined per key", "a step goes back: sorted", "a step repeats: sorted"],
)
def test_merge_of_a_runs_files_in_order_equals_the_sort(later_steps: list[int]) -> None:
    files = [
        [chunk(["b", "a"], [0, 1, 0, 1], [0, 0, 1, 2], "p", 1, 0)],
        [chunk(["a", "b", "c"], [0, 1, 2], [later_steps[0], 5, 0], "p", 2, 4)],
        [chunk(["c", "a"], [1, 1, 0], [*later_steps[1:], 1], "q", 3, 0)],
    ]
    expected = unsorted([c for f in files for c in f]).sort_by(
        [*SORT_KEYS, ("producer_id", "ascending"), ("sequence", "ascending")]
    )
    tables = [points_table(f) for f in files]
    merged = merge_tables(tables, distinct=True)
    assert merged.equals(expected)
    assert (_joined_by_key(tables) is not None) == (later_steps == [3, 4, 9])
    assert merged.to_pylist() == expected.to_pylist()


def test_merge_keeps_each_identity_once_with_its_lowest_offset() -> None:
    first = chunk(["a"], [0, 0], [1, 2], "p", 5, 0)
    again = chunk(["a"], [0, 0, 0], [1, 2, 3], "p", 3, 0)  # sequences 0, 1 again, lower offset
    merged = merge_tables([points_table([first]), points_table([again])])
    assert merged.column("sequence").to_pylist() == [0, 1, 2]
    assert merged.column("offset").to_pylist() == [3, 3, 3]


def test_merge_of_nothing_is_an_empty_metric_table() -> None:
    assert merge_tables([points_table([])]).schema == METRIC_SCHEMA


def test_metric_files_delta_encode_integers_and_read_back_equal() -> None:
    import io

    import pyarrow.parquet as pq

    from runstream.contract.parquet import decode, encode

    table = points_table(CHUNKS)
    data = encode(table)
    metadata = pq.ParquetFile(io.BytesIO(data)).metadata.row_group(0)
    encodings = {
        metadata.column(i).path_in_schema: metadata.column(i).encodings
        for i in range(metadata.num_columns)
    }
    assert "DELTA_BINARY_PACKED" in encodings["step"]
    assert "DELTA_BINARY_PACKED" in encodings["offset"]
    assert metadata.column(0).compression == "ZSTD"
    assert decode(data, "x").equals(table)


def test_a_merge_of_many_keys_sorts_instead_of_slicing_and_equals_the_sort() -> None:
    # 12,000 keys over two files: more slices than _joined_by_key builds (one Arrow table
    # each made a 1M-key run's merge take gigabytes); the sort gives the same table
    names = [f"k{i:05d}" for i in range(6000)]
    files = [
        [chunk(names, list(range(6000)), [0] * 6000, "p", 0, 0)],
        [chunk(names[::-1], list(range(6000)), [1] * 6000, "p", 6000, 1)],
    ]
    tables = [points_table(f) for f in files]
    assert _joined_by_key(tables) is None
    expected = unsorted([c for f in files for c in f]).sort_by(
        [*SORT_KEYS, ("producer_id", "ascending"), ("sequence", "ascending")]
    )
    assert merge_tables(tables, distinct=True).equals(expected)


@pytest.mark.parametrize("shared", [False, True])
def test_a_merge_of_files_with_keys_apart_concatenates_and_equals_the_sort(shared: bool) -> None:
    # a run of many keys logged in turn: each file holds its own range of keys, so the merge
    # and the rollup are the files in key order; with one key in two files (shared) the
    # general path runs; both equal the sort and rollup_table of the merge
    names = [f"k{i:05d}" for i in range(9000)]
    parts = [names[:3000], names[3000:6000], names[6000:]]
    if shared:
        parts[2] = [names[2999], *parts[2]]
    files = [
        [chunk(keys, list(range(len(keys))), [i] * len(keys), "p", i, 10_000 * i)]
        for i, keys in reversed(list(enumerate(parts)))
    ]
    built = [points_and_rollup(f, rollup=True) for f in files]
    tables = [table for table, _ in built]
    expected = unsorted([c for f in files for c in f]).sort_by(
        [*SORT_KEYS, ("producer_id", "ascending"), ("sequence", "ascending")]
    )
    merged = merge_tables(tables, distinct=True)
    assert merged.equals(expected)
    assert combine_rollups([rollup for _, rollup in built]).equals(rollup_table(merged))
