"""A run whose events lie in two partitions (two local log files in the embedded mode: ranks
of a job): each partition's buffer folds its own events, and the snapshot written for the
run holds both (the demo's run once lost its rank 0's params so, while the positions of that
file were committed past them)."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pyarrow.parquet as pq

from runstream.compactor import Snapshots, Store
from runstream.contract import Codec, Event, EventBatch, ParamLogged, Producer, RunStarted, TagSet
from runstream.contract.layout import run_table_path


def test_the_snapshots_of_one_run_from_two_partitions_are_merged(tmp_path: Path) -> None:
    store = Store(fsspec.filesystem("file"), str(tmp_path))
    snapshots = Snapshots(store, Codec())
    rank0 = Producer("rank-0", "host", 1)
    rank1 = Producer("rank-1", "host", 2)
    started = (Event(10, RunStarted(10, name="r")), Event(11, ParamLogged("lr", "0.001")))
    first = Snapshots.apply(None, EventBatch("r", rank0, 0, started))  # partition 0's buffer
    other = Snapshots.apply(None, EventBatch("r", rank1, 0, (Event(12, TagSet("phase", "a")),)))
    snapshots.write_merged("r", first)
    snapshots.write_merged("r", other)  # partition 1's buffer, loaded before the first write
    state = snapshots.load("r")
    assert state is not None
    assert state.params_dict() == {"lr": "0.001"} and state.tags_dict() == {"phase": "a"}
    assert state.name is not None and state.name.value == "r"
    params = pq.read_table(run_table_path(str(tmp_path), "r", "params")).to_pylist()
    assert params == [{"key": "lr", "value": "0.001"}]  # the table readers query, too
