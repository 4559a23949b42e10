"""Every exit path of a failing worker: nothing it has not written is ever committed, not
even when its source revokes its partitions as it closes (as a Kafka consumer does), and a
message with a null value is skipped, never a crash."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runstream.compactor import Compactor, CompactorConfig, Snapshots, Store, StoreWriteError
from runstream.compactor.exceptions import StoreAccessError
from runstream.contract import Codec
from runstream.contract.exceptions import DecodeError
from runstream.contract.layout import live_files
from runstream.core.source import Record


class RevokingSource:
    """One record per poll; ``close()`` revokes every partition first, as KafkaSource's
    consumer does when it leaves the group (the handler may commit)."""

    def __init__(self, records: Sequence[Record]) -> None:
        self.records = list(records)
        self.committed: dict[int, int] = {}
        self._revoke: Callable[[list[int], bool], None] | None = None

    def on_revoke(self, handler: Callable[[list[int], bool], None]) -> None:
        self._revoke = handler

    def poll(self, max_records: int, timeout: float) -> list[Record]:
        return [self.records.pop(0)] if self.records else []

    def commit(self, positions: Mapping[int, int]) -> None:
        self.committed.update(positions)

    def close(self) -> None:
        if self._revoke is not None:
            self._revoke([0], False)


class FaultyStore(Store):
    """A local-folder store that fails (``error``) to list the runs in ``bad_lists`` and to
    write the part files of the runs in ``bad_writes``."""

    def __init__(
        self,
        root: Path,
        error: Exception,
        bad_lists: set[str] | None = None,
        bad_writes: set[str] | None = None,
    ) -> None:
        super().__init__(fsspec.filesystem("file"), str(root))
        self.error = error
        self.bad_lists = bad_lists or set()
        self.bad_writes = bad_writes or set()

    def list_run(self, run_id: str) -> list[str]:
        if run_id in self.bad_lists:
            raise self.error
        return super().list_run(run_id)

    def write(self, path: str, data: bytes) -> None:
        if any(f"run_id={run}/part-" in path for run in self.bad_writes):
            raise self.error
        super().write(path, data)


def worker_of(source: RevokingSource, store: Store, codec: Codec, threads: int) -> Compactor:
    return Compactor(
        source,
        store,
        codec,
        CompactorConfig(write_threads=threads, commit_interval_s=0),
        snapshots=Snapshots(store, codec),
    )


ERRORS = [
    StoreAccessError("listing refused: bad secret", "runs"),
    StoreWriteError("listing failed after 3 attempts (stop set)", "runs"),
    RuntimeError("a crash (a bug, an unexpected error of the store client)"),
]


@pytest.mark.parametrize("error", ERRORS, ids=["refused", "stopped", "crash"])
def test_a_record_whose_run_cannot_be_listed_is_never_committed(
    tmp_path, codec, records_of, metric_batch, error
):
    source = RevokingSource(
        records_of(
            [
                (0, metric_batch("good", "p", 0, ["a"], 0, 10, ended=True)),
                (0, metric_batch("bad", "q", 0, ["a"], 0, 10)),
            ]
        )
    )
    store = FaultyStore(tmp_path, error, bad_lists={"bad"})
    worker = worker_of(source, store, codec, threads=2)
    worker.step()
    worker.drain()
    assert source.committed == {0: 1}  # the good run is written, then committed
    with pytest.raises(type(error)):
        worker.step()
    worker.close()
    source.close()  # revokes: the worker may not commit past the record it never took
    assert source.committed == {0: 1}
    assert worker.failed is error


@pytest.mark.parametrize("threads", [0, 2], ids=["synchronous", "writer threads"])
@pytest.mark.parametrize("error", ERRORS, ids=["refused", "stopped", "crash"])
def test_a_buffer_whose_write_fails_is_never_committed(
    tmp_path, codec, records_of, metric_batch, error, threads
):
    source = RevokingSource(
        records_of(
            [
                (0, metric_batch("good", "p", 0, ["a"], 0, 10, ended=True)),
                (0, metric_batch("bad", "q", 0, ["a"], 0, 10, ended=True)),
                (0, metric_batch("late", "r", 0, ["a"], 0, 10)),
            ]
        )
    )
    store = FaultyStore(tmp_path, error, bad_writes={"bad"})
    worker = worker_of(source, store, codec, threads)
    worker.step()
    worker.drain()
    assert source.committed == {0: 1}
    with pytest.raises(type(error)):
        for _ in range(3):  # the failure surfaces in the step or the drain after it
            worker.step()
            worker.drain()
    worker.close()
    source.close()
    assert source.committed == {0: 1}


def test_a_stop_while_the_store_fails_commits_nothing_unwritten(
    tmp_path, codec, records_of, metric_batch
):
    """``run()`` returns after a stop that interrupted a listing; the revocation at close
    commits nothing past the record the worker never took."""
    source = RevokingSource(
        records_of(
            [
                (0, metric_batch("good", "p", 0, ["a"], 0, 10, ended=True)),
                (0, metric_batch("bad", "q", 0, ["a"], 0, 10)),
            ]
        )
    )
    stop = threading.Event()
    store = FaultyStore(tmp_path, StoreWriteError("failed, stop set", "runs"), bad_lists={"bad"})
    worker = Compactor(
        source,
        store,
        codec,
        CompactorConfig(write_threads=0, commit_interval_s=0),
        snapshots=Snapshots(store, codec),
        stop=stop,
    )
    worker.step()
    assert source.committed == {0: 1}
    worker.run()  # the listing of "bad" fails: run() returns with it untaken
    source.close()
    assert source.committed == {0: 1}


def test_a_message_with_a_null_value_is_skipped_and_the_rest_written(
    tmp_path, codec, records_of, metric_batch
):
    good = records_of(
        [
            (0, metric_batch("r", "p", 0, ["a"], 0, 10)),
            (0, metric_batch("r", "p", 10, ["a"], 10, 10, ended=True)),
        ]
    )
    records = [good[0], Record(0, 1, b"r", None), Record(0, 2, b"r", b""), *good[1:]]
    records = [Record(0, i, r.key, r.value) for i, r in enumerate(records)]
    source = RevokingSource(records)
    store = Store(fsspec.filesystem("file"), str(tmp_path))
    worker = worker_of(source, store, codec, threads=0)
    for _ in range(len(records) + 1):
        worker.step()
    worker.drain()
    assert worker.stats.skipped == 2 and worker.failed is None
    assert source.committed == {0: 4}
    files = live_files(store.list_run("r"))
    table = pa.concat_tables([pq.read_table(f) for f in files])
    assert sorted(table["sequence"].to_pylist()) == [*range(10), *range(11, 21)]  # 10: RunEnded


@pytest.mark.parametrize("value", [None, b""])
def test_the_codec_calls_a_null_value_an_empty_message(codec, value):
    with pytest.raises(DecodeError) as caught:
        codec.decode(value)
    assert caught.value.reason == "empty"
