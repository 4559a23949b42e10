"""The worker's background writes: commits stay below every write in flight, a failed write
commits nothing past it, and threads, caches or read-backs never change a file's bytes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import fsspec
import pyarrow.parquet as pq
import pytest

from runstream.compactor import (
    BufferPolicy,
    Compactor,
    CompactorConfig,
    Snapshots,
    Store,
    StoreWriteError,
)
from runstream.contract.layout import is_merged, live_files


class GatedStore(Store):
    """A local-folder store whose metric part writes wait until ``gate`` is set."""

    def __init__(self, root: Path) -> None:
        super().__init__(fsspec.filesystem("file"), str(root))
        self.gate = threading.Event()

    def write(self, path: str, data: bytes) -> None:
        if "/part-" in path:
            assert self.gate.wait(60), "the test never opened the gate"
        super().write(path, data)


class SlowStore(Store):
    """A local-folder store whose metric file writes take ``delay_s`` more."""

    def __init__(self, root: Path, delay_s: float) -> None:
        super().__init__(fsspec.filesystem("file"), str(root))
        self.delay_s = delay_s

    def write(self, path: str, data: bytes) -> None:
        time.sleep(self.delay_s)
        super().write(path, data)


def test_offsets_are_committed_only_once_the_write_covering_them_has_landed(
    tmp_path, codec, records_of, metric_batch, make_source
):
    records = records_of(
        [
            (0, metric_batch("r1", "p", 0, ["a"], 0, 10, ended=True)),  # written at once
            (0, metric_batch("r2", "q", 0, ["a"], 0, 10, ended=True)),
        ]
    )
    source = make_source(records)
    store = GatedStore(tmp_path)
    worker = Compactor(source, store, codec, CompactorConfig(write_threads=2, commit_interval_s=0))
    worker.step()
    worker.step()
    assert source.committed.get(0, 0) == 0  # both writes are blocked: offset 0 is held
    assert worker.pending == 4  # per run: its part file, then its snapshot and merge
    store.gate.set()
    worker.drain()
    assert source.committed == {0: 2} and worker.pending == 0
    worker.close()


def test_a_write_that_fails_for_good_commits_nothing_past_it(
    tmp_path, codec, records_of, metric_batch, make_source
):
    (tmp_path / "file").write_text("not a folder")
    stop = threading.Event()
    stop.set()  # the store gives up at the first failure instead of retrying
    store = Store(fsspec.filesystem("file"), str(tmp_path / "file"), stop=stop)
    source = make_source(records_of([(0, metric_batch("r1", "p", 0, ["a"], 0, 10, ended=True))]))
    worker = Compactor(source, store, codec, CompactorConfig(commit_interval_s=0))
    with pytest.raises(StoreWriteError):
        worker.step()
        worker.drain()
    assert source.committed.get(0, 0) == 0


def files_of(store: Store, run_id: str) -> dict[str, bytes]:
    return {path.rsplit("/", 1)[-1]: Path(path).read_bytes() for path in store.list_run(run_id)}


@pytest.mark.parametrize(
    "config",
    [
        {"write_threads": 0},
        {"write_threads": 4, "merge_cache_rows": 0},  # merges read every file back
        {"write_threads": 4, "merge_cache_rows": 150},  # some kept, some read back
    ],
)
def test_files_are_the_same_bytes_with_or_without_threads_and_cache(
    tmp_path, codec, records_of, metric_batch, make_source, config
):
    batches = []
    for i in range(8):
        batches.append((0, metric_batch("r1", "p", i * 40, ["b", "a"], i * 20, 20, i == 7)))
        batches.append((0, metric_batch("r2", "q", i * 30, ["x"], i * 30, 30, i == 7)))
    records = records_of(batches)

    def run(folder: Path, **settings: int) -> Store:
        store = Store(fsspec.filesystem("file"), str(folder))
        source = make_source(records)
        worker = Compactor(
            source,
            store,
            codec,
            CompactorConfig(policy=BufferPolicy(max_points=100), poll_records=3, **settings),
            snapshots=Snapshots(store, codec),
        )
        while not source.exhausted:
            worker.step()
        worker.flush(force=True)
        worker.close()
        assert source.committed == {0: len(records)}
        return store

    reference = run(tmp_path / "reference", write_threads=0, merge_cache_rows=0)
    other = run(tmp_path / "other", **config)
    for run_id in ("r1", "r2"):
        files = files_of(reference, run_id)
        assert len(files) == 1 and is_merged(next(iter(files)))
        assert files_of(other, run_id) == files


def test_points_after_a_run_ended_are_added_once_while_its_writes_are_in_flight(
    tmp_path, codec, records_of, metric_batch, make_source
):
    batches = [(0, metric_batch("r1", "p", i * 10, ["a"], i * 10, 10)) for i in range(5)]
    batches.append((0, metric_batch("r1", "p", 50, ["a"], 50, 10, ended=True)))
    batches.append((0, metric_batch("r1", "p", 0, ["a"], 0, 10)))  # a re-sent batch
    batches += [(0, metric_batch("r1", "p", 61 + i * 10, ["a"], 60 + i * 10, 10)) for i in range(3)]
    batches.append((0, metric_batch("r1", "p", 91, ["a"], 90, 10, ended=True)))
    source = make_source(records_of(batches))
    store = SlowStore(tmp_path, 0.2)  # the end's write and merge are in flight at the re-send
    worker = Compactor(
        source,
        store,
        codec,
        CompactorConfig(
            policy=BufferPolicy(max_points=15),
            poll_records=1,
            write_threads=4,
            merge_ended_runs=False,  # a merge would hide a repeat: see every part file
        ),
    )
    while not source.exhausted:
        worker.step()
    worker.drain()
    worker.close()
    rows = [pq.read_table(path) for path in live_files(store.list_run("r1"))]
    sequences = sorted(s for table in rows for s in table["sequence"].to_pylist())
    expected = {
        batch.first_sequence + len(batch.events) + j
        for _, batch in batches
        for j in range(len(batch.metrics))
    }
    assert sequences == sorted(expected)  # every point, none twice
