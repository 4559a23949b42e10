"""The run states the store holds: where the query's tail takes over from.

The compactor writes, per run, a snapshot of the reducer's state folded from every event but
the metric points and the heartbeats that came alone (``runs/run_id=.../run.parquet``, its
``state`` column), and metric files whose footers carry rollups (per key and block of steps:
min, max and the last point). :func:`stored_states` reads both and rebuilds, per run, the
state a fold of the events the store holds gives: the snapshot's registers, plus per metric
key the summary of the rollups (the latest point by (step, timestamp, producer, sequence),
the min and the max with NaN left out). Rollups keep DuckDB's max (NaN when any value is
NaN): for such a key the max is read from the points themselves.

What it costs grows with the number of runs and files, not with the number of events.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
from fsspec import AbstractFileSystem

from runstream.contract.codec import Codec
from runstream.contract.exceptions import CorruptPartError, DecodeError
from runstream.contract.layout import RUNS_DIR
from runstream.contract.parquet import (
    decode_table,
    footer_length,
    footer_rollup,
    read_footer,
    rollup_table,
)
from runstream.contract.state import MetricSummary, RunState, decode_state
from runstream.query.exceptions import StoreReadError
from runstream.query.store import FOOTER_READ_BYTES, POINT_COLUMNS, MetricFile, all_files, key_rows

logger = logging.getLogger(__name__)

_THREADS = 16
"""Snapshot and footer requests in flight at once (each is a small GET)."""


def stored_states(fs: AbstractFileSystem, root: str, codec: Codec) -> dict[str, RunState]:
    """Every run's state as the store holds it (snapshot registers and metric summaries).

    Raises:
        StoreReadError: a snapshot or a metric file cannot be read or decoded.
    """
    root = root.rstrip("/")
    snapshots = _snapshot_paths(fs, root)
    files = all_files(fs, root)
    with ThreadPoolExecutor(_THREADS) as pool:
        states = dict(pool.map(lambda item: (item[0], _read_snapshot(fs, codec, *item)), snapshots))
        rollups = list(pool.map(lambda file: _read_rollup(fs, file), files))
    by_run: dict[str, list[tuple[MetricFile, pa.Table]]] = {}
    for file, rollup in zip(files, rollups, strict=True):
        by_run.setdefault(file.run_id, []).append((file, rollup))
    for run_id, parts in by_run.items():
        state = states.get(run_id)
        if state is None:  # points but no snapshot yet (or snapshots off): metrics only
            state = states[run_id] = RunState(run_id)
        _add_summaries(fs, state, parts)
    logger.debug("stored states: %d snapshots, %d files", len(snapshots), len(files))
    return states


def _snapshot_paths(fs: AbstractFileSystem, root: str) -> list[tuple[str, str]]:
    """(run id, path) of every run snapshot (``run.parquet``) in the store."""
    base = f"{root}/{RUNS_DIR}"
    fs.invalidate_cache(base)
    try:
        names = fs.find(base)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        parts = str(name).rsplit("/", 2)
        if len(parts) == 3 and parts[2] == "run.parquet" and parts[1].startswith("run_id="):
            found.append((parts[1][len("run_id=") :], str(name)))
    return found


def _read_snapshot(fs: AbstractFileSystem, codec: Codec, run_id: str, path: str) -> RunState:
    try:
        table = decode_table(bytes(fs.cat_file(path)), path, ["state"])
        state = decode_state(codec, table["state"][0].as_py())
    except (CorruptPartError, DecodeError, IndexError) as error:
        raise StoreReadError(f"not a readable run snapshot: {error}", path) from error
    except OSError as error:
        raise StoreReadError(f"cannot read: {error!r}", path) from error
    if state.run_id != run_id:
        raise StoreReadError(f"snapshot of run {state.run_id!r} in the folder of {run_id!r}", path)
    return state


def _read_rollup(fs: AbstractFileSystem, file: MetricFile) -> pa.Table:
    """The rollup of a metric file (computed from its points when it has none)."""
    try:
        tail = bytes(fs.cat_file(file.path, start=-FOOTER_READ_BYTES))
        if footer_length(tail, file.path) > len(tail):
            tail = bytes(fs.cat_file(file.path))
        rollup = footer_rollup(read_footer(tail, file.path), file.path)
        if rollup is None:
            data = bytes(fs.cat_file(file.path))
            rollup = rollup_table(decode_table(data, file.path, ["key", *POINT_COLUMNS]))
    except CorruptPartError as error:
        raise StoreReadError(error.reason, file.path) from error
    except OSError as error:
        raise StoreReadError(f"cannot read: {error!r}", file.path) from error
    return rollup


def _add_summaries(
    fs: AbstractFileSystem, state: RunState, parts: Sequence[tuple[MetricFile, pa.Table]]
) -> None:
    """Fold the metric summaries of a run's rollups into ``state``."""
    tables = [rollup for _, rollup in parts if rollup.num_rows]
    if not tables:
        return
    table = pa.concat_tables(tables).combine_chunks() if len(tables) > 1 else tables[0]
    keys = table["key"].to_pylist()
    names = sorted(set(keys))
    rank = {name: i for i, name in enumerate(names)}
    codes = np.array([rank[key] for key in keys], np.int64)
    producers = table["producer_id"].to_pylist()
    producer_names = sorted(set(producers))
    producer_rank = {name: i for i, name in enumerate(producer_names)}
    producer_codes = np.array([producer_rank[p] for p in producers], np.int64)
    step = table["step"].to_numpy()
    timestamp = table["timestamp"].to_numpy()
    sequence = table["sequence"].to_numpy()
    value = table["value"].to_numpy()
    order = np.lexsort((sequence, producer_codes, timestamp, step, codes))
    sorted_codes = codes[order]
    change = np.ones(len(order), bool)
    change[1:] = sorted_codes[1:] != sorted_codes[:-1]
    starts = np.flatnonzero(change)
    last = order[np.append(starts[1:], len(order)) - 1]
    lows = np.fmin.reduceat(table["min"].to_numpy()[order], starts)
    highs = table["max"].to_numpy()[order]
    any_nan_high = np.logical_or.reduceat(np.isnan(highs), starts)
    highs = np.fmax.reduceat(highs, starts)
    for at, code in enumerate(sorted_codes[starts].tolist()):
        key = names[code]
        point = int(last[at])
        low, high = float(lows[at]), float(highs[at])
        if any_nan_high[at] and low == low:  # some NaN, some numbers: the max of the numbers
            high = _max_of_numbers(fs, [file for file, _ in parts], key)
        summary = MetricSummary(
            float(value[point]),
            int(step[point]),
            int(timestamp[point]),
            producer_names[int(producer_codes[point])],
            int(sequence[point]),
            low + 0.0,
            high + 0.0,
        )
        current = state.metrics.get(key)
        if current is None:
            state.metrics[key] = summary
        else:
            current.absorb(summary)


def _max_of_numbers(fs: AbstractFileSystem, files: Sequence[MetricFile], key: str) -> float:
    """The greatest value of ``key`` in ``files`` but NaN (rollups keep NaN as the max)."""
    best = -np.inf
    for file in files:
        values = key_rows(bytes(fs.cat_file(file.path)), file.path, key, ["value"])["value"]
        array = values.to_numpy()
        array = array[~np.isnan(array)]
        if array.size:
            best = max(best, float(array.max()))
    return best if best != -np.inf else float("nan")
