"""The worker over an in-memory source and a local-folder store: exactly once, through
restarts, re-sent events and merges."""

from __future__ import annotations

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runstream.compactor import BufferPolicy, Compactor, CompactorConfig, Snapshots, Store
from runstream.contract import (
    Codec,
    Event,
    EventBatch,
    ParamLogged,
    Producer,
    RunEnded,
    RunStarted,
    TagSet,
)
from runstream.contract.layout import is_merged, live_files, parse_part_name


def make_store(tmp_path) -> Store:
    return Store(fsspec.filesystem("file"), str(tmp_path))


def run_to_end(source, store: Store, codec: Codec, **config) -> Compactor:
    worker = Compactor(
        source, store, codec, CompactorConfig(**config), snapshots=Snapshots(store, codec)
    )
    while not source.exhausted:
        worker.step()
    worker.step()
    worker.drain()
    return worker


def rows(store: Store, run_id: str) -> pa.Table:
    files = live_files(store.list_run(run_id))
    return pa.concat_tables([pq.read_table(f) for f in files]) if files else None


def identities(table: pa.Table) -> list[tuple[str, int]]:
    return sorted(zip(table["producer_id"].to_pylist(), table["sequence"].to_pylist(), strict=True))


def test_every_point_lands_once_sorted_with_its_position(
    tmp_path, codec, records_of, metric_batch, make_source
):
    batches = [(0, metric_batch("r1", "p", i * 200, ["b", "a"], i * 100, 100)) for i in range(6)]
    records = records_of(batches)
    store = make_store(tmp_path)
    worker = run_to_end(make_source(records), store, codec, policy=BufferPolicy(max_points=500))
    files = live_files(store.list_run("r1"))
    assert [parse_part_name(f) for f in files] == [(0, 0, 2), (0, 3, 5)]
    table = rows(store, "r1")
    assert identities(table) == [("p", s) for s in range(1200)]
    first = pq.read_table(files[0])
    keys_steps = list(zip(first["key"].to_pylist(), first["step"].to_pylist(), strict=True))
    assert keys_steps == sorted(keys_steps)
    by_sequence = {
        s: (k, st, v, o)
        for k, st, v, s, o in zip(
            *(table[c].to_pylist() for c in ("key", "step", "value", "sequence", "offset")),
            strict=True,
        )
    }
    assert by_sequence[201] == ("a", 100, 51.0, 1)
    assert pq.ParquetFile(files[0]).metadata.row_group(0).column(0).compression == "ZSTD"
    assert worker.positions() == {0: 6}


def test_commit_stops_at_the_first_offset_held_by_an_open_buffer(
    tmp_path, codec, records_of, metric_batch, make_source
):
    records = records_of(
        [
            (0, metric_batch("small", "p", 0, ["a"], 0, 10)),
            (0, metric_batch("big", "q", 0, ["a"], 0, 600)),
        ]
    )
    source = make_source(records)
    run_to_end(
        source,
        make_store(tmp_path),
        codec,
        policy=BufferPolicy(max_points=500),
        commit_interval_s=0,
    )
    assert source.committed == {0: 0}  # "small" still open at offset 0


def test_a_restart_from_any_commit_rewrites_nothing_twice(
    tmp_path, codec, records_of, metric_batch, make_source
):
    batches = []
    for i in range(12):
        batches.append(
            (i % 2, metric_batch(f"r{i % 3}", f"p{i % 3}", i * 50, ["a", "b"], i * 25, 25))
        )
    records = records_of(batches)
    store = make_store(tmp_path)
    policy = BufferPolicy(max_points=120)
    # first life: stops after 7 records, without a final flush (a crash)
    source = make_source(records)
    worker = Compactor(
        source, store, codec, CompactorConfig(policy=policy, poll_records=1, commit_interval_s=0)
    )
    for _ in range(7):
        worker.step()
    worker.close()  # the writes in flight land; nothing more is committed
    # second life: from the commits only
    run_to_end(
        make_source(records, source.committed),
        store,
        codec,
        policy=BufferPolicy(max_points=120, rotate_interval_s=0),
    )
    for run in ("r0", "r1", "r2"):
        got = identities(rows(store, run))
        assert len(got) == len(set(got)) == 4 * 50


def test_a_resent_event_at_a_new_offset_is_not_a_second_row(
    tmp_path, codec, records_of, metric_batch, make_source
):
    original = metric_batch("r1", "p", 0, ["a"], 0, 100)
    records = records_of(
        [(0, original), (0, metric_batch("r1", "p", 100, ["a"], 100, 50)), (0, original)]
    )
    store = make_store(tmp_path)
    run_to_end(
        make_source(records), store, codec, policy=BufferPolicy(max_points=100, rotate_interval_s=0)
    )
    # and again, after a restart that re-reads everything (e.g. `runstream sync` twice)
    run_to_end(
        make_source(records + records_of([(0, original)] * 4)[3:]),
        store,
        codec,
        policy=BufferPolicy(rotate_interval_s=0),
    )
    assert identities(rows(store, "r1")) == [("p", s) for s in range(150)]


def test_an_ended_run_is_merged_into_one_sorted_file(
    tmp_path, codec, records_of, metric_batch, make_source
):
    batches = [
        (3, metric_batch("r1", "p", i * 100, ["z", "a"], i * 50, 50, ended=i == 4))
        for i in range(5)
    ]
    records = records_of(batches)
    store = make_store(tmp_path)
    worker = run_to_end(make_source(records), store, codec, policy=BufferPolicy(max_points=100))
    files = live_files(store.list_run("r1"))
    assert len(files) == 1 and is_merged(files[0]) and parse_part_name(files[0]) == (3, 0, 4)
    assert store.list_run("r1") == files  # the merged files are deleted
    table = pq.read_table(files[0])
    pairs = list(zip(table["key"].to_pylist(), table["step"].to_pylist(), strict=True))
    assert pairs == sorted(pairs) and len(pairs) == 500
    assert worker.stats.merges == 1


def test_snapshots_hold_params_tags_and_status_latest_wins(
    tmp_path, codec, records_of, metric_batch, make_source
):
    producer = Producer("p", "h", 1)
    first = EventBatch(
        "r1",
        producer,
        0,
        (
            Event(10, RunStarted(10, name="first", tags={"team": "a"})),
            Event(11, ParamLogged("lr", "0.1")),
            Event(12, TagSet("stage", "dev", "labels")),
        ),
    )
    second = EventBatch(
        "r1", producer, 3, (Event(20, ParamLogged("lr", "0.2")), Event(21, TagSet("team", "b")))
    )
    store = make_store(tmp_path)
    run_to_end(
        make_source(records_of([(0, first)])),
        store,
        codec,
        policy=BufferPolicy(rotate_interval_s=0),
    )
    # a new worker resumes from the snapshot, not from the first batch
    run_to_end(
        make_source(records_of([(0, first), (0, second)]), {0: 1}),
        store,
        codec,
        policy=BufferPolicy(rotate_interval_s=0),
    )
    root = store.root
    params = pq.read_table(f"{root}/runs/run_id=r1/params.parquet").to_pylist()
    tags = pq.read_table(f"{root}/runs/run_id=r1/tags.parquet").to_pylist()
    run = pq.read_table(f"{root}/runs/run_id=r1/run.parquet").to_pylist()
    assert params == [{"key": "lr", "value": "0.2"}]
    assert sorted((t["namespace"], t["key"], t["value"]) for t in tags) == [
        ("labels", "stage", "dev"),
        ("tags", "team", "b"),
    ]
    assert run[0]["name"] == "first" and run[0]["status"] == "RUNNING"


class RecordingStore(Store):
    """A local-folder store that records the snapshot tables it writes, in order."""

    def __init__(self, root) -> None:  # type: ignore[no-untyped-def]
        super().__init__(fsspec.filesystem("file"), str(root))
        self.tables: list[str] = []

    def write(self, path: str, data: bytes) -> None:
        if "/runs/" in path:
            self.tables.append(path.rsplit("/", 1)[-1].removesuffix(".parquet"))
        super().write(path, data)


def test_a_snapshot_table_is_written_only_when_its_content_changed(
    tmp_path, codec, records_of, make_source
):
    producer = Producer("p", "h", 1)
    batches = [
        (
            Event(10, RunStarted(10, name="n", tags={"team": "a"})),
            Event(11, ParamLogged("lr", "1")),
        ),
        (Event(12, TagSet("stage", "dev", "labels")),),
        (Event(13, RunEnded("FINISHED", 13)),),
        (Event(14, ParamLogged("lr", "2")),),  # read by a new worker, from the snapshot on
    ]
    records = records_of(
        [(0, EventBatch("r1", producer, i * 10, events)) for i, events in enumerate(batches)]
    )
    store = RecordingStore(tmp_path)
    config = {"policy": BufferPolicy(rotate_interval_s=0), "poll_records": 1}
    run_to_end(make_source(records[:3]), store, codec, **config)
    assert store.tables == ["params", "tags", "run", "tags", "run", "run"]
    store.tables.clear()
    run_to_end(make_source(records, {0: 3}), store, codec, **config)
    assert store.tables == ["params", "run"]
    root = store.root
    assert pq.read_table(f"{root}/runs/run_id=r1/params.parquet").to_pylist() == [
        {"key": "lr", "value": "2"}
    ]
    tags = pq.read_table(f"{root}/runs/run_id=r1/tags.parquet").to_pylist()
    assert sorted((t["namespace"], t["key"]) for t in tags) == [
        ("labels", "stage"),
        ("tags", "team"),
    ]
    assert pq.read_table(f"{root}/runs/run_id=r1/run.parquet")["status"].to_pylist() == ["FINISHED"]


def test_an_undecodable_message_is_skipped_and_committed(
    tmp_path, codec, records_of, metric_batch, make_source
):
    from runstream.core.source import Record

    records = [
        Record(0, 0, b"r", b"garbage"),
        *records_of([(0, metric_batch("r1", "p", 0, ["a"], 0, 5))])[0:0],
    ]
    good = records_of([(0, metric_batch("r1", "p", 0, ["a"], 0, 5))])[0]
    records.append(Record(0, 1, good.key, good.value))
    source = make_source(records)
    worker = run_to_end(
        source,
        make_store(tmp_path),
        codec,
        policy=BufferPolicy(rotate_interval_s=0),
        commit_interval_s=0,
    )
    assert worker.stats.skipped == 1 and source.committed == {0: 2}


@pytest.mark.parametrize("max_points", [1, 7, 10_000])
def test_file_contents_do_not_depend_on_how_records_are_polled(
    tmp_path, codec, records_of, max_points, metric_batch, make_source
):
    records = records_of(
        [(0, metric_batch("r1", "p", i * 10, ["a"], i * 10, 10)) for i in range(4)]
    )
    one = make_store(tmp_path / "one")
    two = make_store(tmp_path / "two")
    run_to_end(
        make_source(records),
        one,
        codec,
        policy=BufferPolicy(max_points=max_points),
        merge_ended_runs=False,
        poll_records=1,
    )
    run_to_end(
        make_source(records),
        two,
        codec,
        policy=BufferPolicy(max_points=max_points),
        merge_ended_runs=False,
        poll_records=1,
    )
    names = lambda s: [f.rsplit("/", 1)[-1] for f in s.list_run("r1")]  # noqa: E731
    assert names(one) == names(two)
    for name in names(one):
        assert pq.read_table(f"{one.root}/metrics/run_id=r1/{name}").equals(
            pq.read_table(f"{two.root}/metrics/run_id=r1/{name}")
        )
