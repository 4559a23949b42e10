"""Heartbeats do not rewrite run snapshots: a batch of heartbeats only changes nothing the
snapshots fold, so an open run costs no snapshot write per rotation; the heartbeats of a batch
written anyway are folded (the snapshot then says the run sends heartbeats)."""

from __future__ import annotations

from runstream.compactor.snapshots import Snapshots
from runstream.contract import Event, EventBatch, Heartbeat, ParamLogged, Producer

P = Producer("p", "h", 1)


def test_a_batch_of_heartbeats_changes_no_snapshot_and_others_do() -> None:
    beats = EventBatch("r", P, 0, (Event(1, Heartbeat(30_000)), Event(2, Heartbeat(30_000))))
    mixed = EventBatch("r", P, 2, (Event(3, Heartbeat(30_000)), Event(4, ParamLogged("a", "b"))))
    assert not Snapshots.changes(beats)
    assert Snapshots.changes(mixed)
    state = Snapshots.apply(None, mixed)
    assert state.params_dict() == {"a": "b"}
    # folded with the batch that changes the state (the SDK sends the first with RunStarted)
    assert state.heartbeats and state.last_heard_us == 4
