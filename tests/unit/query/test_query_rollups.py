"""Rollups: the compactor's per-block summaries, and downsamples read from them.

The references here are computed from the raw points in plain Python (not with the code under
test): min ignores NaN unless every value is NaN, max is NaN if any value is (DuckDB's order),
and the last point is the greatest (step, timestamp, producer_id, sequence).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import duckdb
import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runstream.apps.embedded import process
from runstream.contract.layout import part_path, run_dir
from runstream.contract.parquet import (
    METRIC_SCHEMA,
    ROLLUP_BLOCK_BITS,
    ROLLUP_SCHEMA,
    combine_rollups,
    encode,
    footer_length,
    footer_rollup,
    read_footer,
    rollup_table,
)
from runstream.core.settings import Settings
from runstream.query import QueryEngine
from runstream.query.tail import EmptyEventLog
from runstream.tracking import Client

BLOCK = 1 << ROLLUP_BLOCK_BITS
Point = tuple[str, int, int, float, str, int]  # key, step, timestamp, value, producer, sequence


def points_of(seed: int, steps: int) -> list[Point]:
    """Two keys over ``steps`` steps, with repeated steps (other producers, other times),
    NaN values, and copies of events (the same identity twice)."""
    rng = np.random.default_rng(seed)
    points: list[Point] = []
    sequence = {"p-a": 0, "p-b": 0}
    for step in range(0, steps, 3):
        for key in ("loss", "acc"):
            producer = "p-a" if rng.random() < 0.7 else "p-b"
            sequence[producer] += 1
            value = float("nan") if rng.random() < 0.01 else float(rng.normal())
            points.append((key, step, 1_000 + step, value, producer, sequence[producer]))
            if rng.random() < 0.05:  # the same step again, from another producer, same time
                other = "p-b" if producer == "p-a" else "p-a"
                sequence[other] += 1
                points.append(
                    (key, step, 1_000 + step, float(rng.normal()), other, sequence[other])
                )
            if rng.random() < 0.02:  # a copy of the event (a re-sent batch)
                points.append(points[-1])
    points.append(("loss", steps + BLOCK, 9, float("nan"), "p-a", 10**6))  # a block of NaN only
    return points


def table_of(points: list[Point]) -> pa.Table:
    key, step, timestamp, value, producer, sequence = (list(c) for c in zip(*points, strict=True))
    return pa.table(
        {
            "key": key,
            "step": step,
            "timestamp": timestamp,
            "value": value,
            "producer_id": producer,
            "sequence": sequence,
            "partition": [0] * len(points),
            "offset": list(range(len(points))),
        },
        schema=METRIC_SCHEMA,
    )


def nan_min(values: list[float]) -> float:
    numbers = [v for v in values if not math.isnan(v)]
    return min(numbers) if numbers else math.nan


def nan_max(values: list[float]) -> float:
    return math.nan if any(math.isnan(v) for v in values) else max(values)


def summary(group: list[Point]) -> tuple[object, ...]:
    """(first_step, step, timestamp, value, min, max) of a group of points."""
    last = max(group, key=lambda p: (p[1], p[2], p[4], p[5]))
    values = [p[3] for p in group]
    return (min(p[1] for p in group), last[1], last[2], last[3], nan_min(values), nan_max(values))


def same(a: list[tuple[object, ...]], b: list[tuple[object, ...]]) -> bool:
    """Row lists equal, NaN equal to NaN."""
    key = lambda row: tuple("nan" if isinstance(x, float) and math.isnan(x) else x for x in row)  # noqa: E731
    return [key(r) for r in a] == [key(r) for r in b]


def reference(points: list[Point], key: str, max_points: int, lo: int, hi: int) -> list:
    """The block-aligned downsample of ``key``'s points in [lo, hi] (whole blocks)."""
    chosen = [p for p in points if p[0] == key and lo <= p[1] <= hi]
    first = min(p[1] for p in chosen)
    last = max(p[1] for p in chosen)
    origin = first // BLOCK * BLOCK
    per_bucket = math.ceil((last - origin + 1) / max_points)
    width = math.ceil(per_bucket / BLOCK) * BLOCK  # the least multiple of a block that fits
    buckets: dict[int, list[Point]] = {}
    for point in chosen:
        buckets.setdefault((point[1] - origin) // width, []).append(point)
    return sorted((summary(group) for group in buckets.values()), key=lambda r: r[1])  # type: ignore[arg-type,return-value]


def rows(table: pa.Table) -> list[tuple[object, ...]]:
    names = ["first_step", "step", "timestamp", "value", "min", "max"]
    return list(zip(*(table[n].to_pylist() for n in names), strict=True))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_rollup_is_the_summary_of_each_block_in_any_row_order(seed: int) -> None:
    points = points_of(seed, 6 * BLOCK)
    shuffled = [points[i] for i in np.random.default_rng(seed).permutation(len(points))]
    rollup = rollup_table(table_of(shuffled))
    assert rollup.schema == ROLLUP_SCHEMA
    groups: dict[tuple[str, int], list[Point]] = {}
    for point in points:
        groups.setdefault((point[0], point[1] >> ROLLUP_BLOCK_BITS), []).append(point)
    expected = [
        (key, block, len(groups[key, block]), *summary(groups[key, block]))
        for key, block in sorted(groups)
    ]
    got = list(
        zip(
            *(rollup[n].to_pylist() for n in ["key", "block", "count", "first_step", "step"]),
            *(rollup[n].to_pylist() for n in ["timestamp", "value", "min", "max"]),
            strict=True,
        )
    )
    assert same(got, [(k, b, c, f, s, t, v, lo, hi) for k, b, c, f, s, t, v, lo, hi in expected])


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("parts", [1, 3, 7])
def test_rollups_of_files_combine_into_the_rollup_of_their_union(seed: int, parts: int) -> None:
    """A merge's rollup comes from its files' rollups: blocks that straddle files, ties on
    the last step across files, NaN in some files only."""
    points = list({(p[4], p[5]): p for p in points_of(seed, 6 * BLOCK)}.values())  # distinct
    rng = np.random.default_rng(seed)
    shuffled = [points[i] for i in rng.permutation(len(points))]
    files = [shuffled[i::parts] for i in range(parts)]
    files.append([("acc", 2 * BLOCK + 1, 5, math.nan, "p-c", 1)])  # a file's block all NaN
    combined = combine_rollups([rollup_table(table_of(f)) for f in files])
    expected = rollup_table(table_of([*points, *files[-1]]))
    assert combined.schema == expected.schema
    table_rows = lambda t: list(zip(*t.to_pydict().values(), strict=True))  # noqa: E731
    assert same(table_rows(combined), table_rows(expected))


def test_rollup_min_max_agree_with_duckdb_on_nan() -> None:
    values = [1.0, math.nan, -2.0]
    rollup = rollup_table(table_of([("k", i, 0, v, "p", i) for i, v in enumerate(values)]))
    duck = (
        duckdb.connect()
        .execute("SELECT min(v), max(v) FROM (SELECT unnest($v::DOUBLE[]) AS v)", {"v": values})
        .fetchone()
    )
    assert duck is not None
    assert rollup["min"].to_pylist() == [duck[0]] == [-2.0]
    assert math.isnan(rollup["max"][0].as_py()) and math.isnan(duck[1])


@pytest.fixture
def store(tmp_path: Path) -> tuple[fsspec.AbstractFileSystem, str]:
    return fsspec.filesystem("file"), str(tmp_path / "store")


def write_files(
    fs: fsspec.AbstractFileSystem, root: str, points: list[Point], parts: int, rollups: bool
) -> None:
    """``points`` in ``parts`` part files (overlapping by a few points: copies across files),
    each sorted as the compactor sorts, with its rollup in its footer when ``rollups``."""
    fs.makedirs(run_dir(root, "r"), exist_ok=True)
    size = -(-len(points) // parts)
    for index in range(parts):
        chunk = points[max(0, index * size - 5) : (index + 1) * size]
        table = table_of(sorted(chunk, key=lambda p: (p[0], p[1])))
        path = part_path(root, "r", 0, index * 10, index * 10 + 9)
        fs.pipe_file(path, encode(table, rollup_table(table) if rollups else None))


@pytest.mark.parametrize("rollups", [True, False], ids=["footer rollups", "computed from files"])
@pytest.mark.parametrize(("max_points", "lo", "hi"), [(20, None, None), (7, BLOCK, 40 * BLOCK - 1)])
def test_a_wide_downsample_is_block_aligned_and_exact(
    store: tuple[fsspec.AbstractFileSystem, str],
    rollups: bool,
    max_points: int,
    lo: int | None,
    hi: int | None,
) -> None:
    fs, root = store
    points = points_of(7, 60 * BLOCK)
    write_files(fs, root, points, parts=4, rollups=rollups)
    with QueryEngine(EmptyEventLog(), fs, root) as engine:
        for key in ("loss", "acc"):
            table = engine.get_metric_history(
                "r", key, start_step=lo, end_step=hi, max_points=max_points
            )
            expected = reference(points, key, max_points, lo or 0, 10**12 if hi is None else hi)
            assert 1 < table.num_rows <= max_points
            assert same(rows(table), expected)


def test_a_narrow_or_unaligned_downsample_reads_the_points(
    store: tuple[fsspec.AbstractFileSystem, str],
) -> None:
    fs, root = store
    points = points_of(5, 8 * BLOCK)
    write_files(fs, root, points, parts=2, rollups=True)
    with QueryEngine(EmptyEventLog(), fs, root) as engine:
        narrow = engine.get_metric_history("r", "acc", max_points=100)  # width < one block
        unaligned = engine.get_metric_history("r", "acc", start_step=1, max_points=2)
    steps = sorted({p[1] for p in points if p[0] == "acc"})
    width = -(-(steps[-1] - steps[0] + 1) // 100)
    assert narrow.num_rows == len({(s - steps[0]) // width for s in steps})
    assert unaligned["first_step"].to_pylist()[0] == 3  # the first point at or after step 1


def wave(step: int) -> float:
    return math.cos(step / 300.0) + (50.0 if step == 7_777 else 0.0)


@pytest.fixture
def compacted(tmp_path: Path) -> Iterator[Settings]:
    """Embedded mode, the real SDK and compactor: run "e" logs 20,000 points in two rounds
    of compaction, then ends (its files are merged); run "w" has 20,000 points compacted and
    5,000 more only in the log."""
    settings = Settings.resolve(f"file://{tmp_path / 'tracking'}", environ={})
    client = Client(settings=settings, spill_dir=tmp_path / "spill")
    ended = client.start_run("e", "exp", run_id="e", capture_code=False)
    run = client.start_run("w", "exp", run_id="w", capture_code=False)
    for step in range(20_000):
        run.log_metric("loss", wave(step), step=step)
        ended.log_metric("loss", wave(step), step=step)
        if step == 10_000:
            client.flush()
            process(settings)
    ended.end("FINISHED")
    client.flush()
    process(settings)
    for step in range(20_000, 25_000):
        run.log_metric("loss", wave(step), step=step)
    client.flush()
    yield settings
    client.close()


def footer_of(fs: fsspec.AbstractFileSystem, path: str) -> pa.Table | None:
    """The rollup in the footer of the file at ``path``, read from its last 64 KiB."""
    tail = bytes(fs.cat_file(path, start=-65536))
    assert footer_length(tail, path) <= len(tail)
    return footer_rollup(read_footer(tail, path), path)


def test_the_compactor_writes_a_rollup_per_file_and_the_tail_joins_it(
    compacted: Settings,
) -> None:
    with QueryEngine.from_settings(compacted) as engine:
        fs, root = engine._fs, engine._root  # the engine's own store
        metric_files = fs.ls(run_dir(root, "w"), detail=False)
        merged = fs.ls(run_dir(root, "e"), detail=False)
        assert len(metric_files) > 1 and len(merged) == 1 and "merged-" in merged[0]
        for path in [*metric_files, *merged]:
            points = pq.read_table(path, filesystem=fs)
            assert footer_of(fs, path) == rollup_table(points), path
        assert not fs.exists(f"{root}/rollups")  # no second object per file
        tables = {r: engine.get_metric_history(r, "loss", max_points=10) for r in ("w", "e")}
    for run_id, steps in (("w", 25_000), ("e", 20_000)):
        points = [("loss", s, 0, wave(s), "p", s) for s in range(steps)]
        expected = reference(points, "loss", 10, 0, 10**12)
        got = rows(tables[run_id])
        assert [r[:2] + r[3:] for r in got] == [r[:2] + r[3:] for r in expected]
        assert max(tables[run_id]["max"].to_pylist()) == wave(7_777)
