"""Liveness: CRASHED is a pure view of the run state, a time and a lease; any order of the
same events gives the same status at any time, and a later event makes the run RUNNING again."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from runstream.contract.codec import Codec
from runstream.contract.events import (
    Event,
    EventBatch,
    Heartbeat,
    MetricColumns,
    ParamLogged,
    Producer,
    RunEnded,
    RunStarted,
)
from runstream.contract.liveness import CRASHED, crashed_at_us, is_crashed, shown, status
from runstream.contract.state import apply_batch, decode_state, encode_state, fold

LEASE = 3_000_000
P = Producer("p", "h", 1)


def batch(sequence: int, *events: tuple[int, object], points: int = 0) -> EventBatch:
    columns = MetricColumns(
        ["loss"], [0] * points, list(range(points)), [1.0] * points, [9] * points
    )
    return EventBatch("r", P, sequence, tuple(Event(t, e) for t, e in events), columns)  # type: ignore[arg-type]


STARTED = batch(0, (1_000, RunStarted(1_000)), (2_000, Heartbeat(750)))


def test_a_run_heard_from_within_the_lease_is_running_and_crashed_after_it() -> None:
    state = fold([STARTED])["r"]
    assert state.last_heard_us == 2_000 and state.heartbeats
    assert status(state, 2_000 + LEASE, LEASE) == "RUNNING"
    assert status(state, 2_001 + LEASE, LEASE) == CRASHED
    assert crashed_at_us(state, LEASE) == 2_000 + LEASE


def test_metric_points_do_not_count_as_heard_from() -> None:
    # Points carry the caller's timestamps (here in 1970 or far ahead): only events count.
    state = fold([STARTED, batch(2, points=3)])["r"]
    assert state.last_heard_us == 2_000


def test_events_after_the_lease_make_the_run_running_again() -> None:
    later = 2_000 + 10 * LEASE
    state = fold([STARTED, batch(2, (later, ParamLogged("lr", "0.1")))])["r"]
    assert status(state, later + LEASE, LEASE) == "RUNNING"
    assert status(state, later + LEASE + 1, LEASE) == CRASHED


def test_ended_runs_and_runs_without_heartbeats_never_crash() -> None:
    ended = fold([STARTED, batch(2, (3_000, RunEnded("FINISHED", 3_000)))])["r"]
    assert status(ended, 10**15, LEASE) == "FINISHED"
    assert crashed_at_us(ended, LEASE) is None
    silent = fold([batch(0, (1_000, RunStarted(1_000)))])["r"]
    assert not silent.heartbeats
    assert status(silent, 10**15, LEASE) == "RUNNING"


def test_shown_changes_only_the_status_and_never_the_folded_state() -> None:
    state = fold([STARTED])["r"]
    view = shown(state, 10**15, LEASE)
    assert view.status is not None and state.status is not None
    assert view.status.value == CRASHED and view.status.order == state.status.order
    assert state.status.value == "RUNNING"
    assert shown(state, 2_000, LEASE) is state
    # The published bytes carry CRASHED; a plain decode reads it back.
    decoded = decode_state(Codec(), encode_state(Codec(), view))
    assert decoded.status_value == CRASHED and decoded.last_heard_us == 2_000


def test_liveness_survives_the_state_message() -> None:
    state = fold([STARTED])["r"]
    again = decode_state(Codec(), encode_state(Codec(), state))
    assert again == state


times = st.integers(0, 50)
beats = st.lists(
    st.tuples(times, st.sampled_from(["beat", "param", "start", "end"])), min_size=1, max_size=8
)


@settings(max_examples=200, deadline=None)
@given(beats, st.data())
def test_the_status_at_any_time_does_not_depend_on_arrival_order(
    events: list[tuple[int, str]], data: st.DataObject
) -> None:
    made = {
        "beat": Heartbeat(1),
        "param": ParamLogged("k", "v"),
        "start": RunStarted(0),
        "end": RunEnded("FAILED", 1),
    }
    batches = [batch(i, (t, made[kind])) for i, (t, kind) in enumerate(events)]
    shuffled = data.draw(st.permutations(batches))
    state = None
    for each in shuffled:
        state = apply_batch(state, each)
    assert state is not None
    reference = fold(batches)["r"]
    for now in range(0, 60, 3):
        assert is_crashed(state, now, 5) == is_crashed(reference, now, 5)
        assert status(state, now, 5) == status(reference, now, 5)


def test_folded_reads_a_published_crash_back_as_the_register_it_replaced() -> None:
    from runstream.contract.liveness import folded

    state = fold([STARTED])["r"]
    assert folded(shown(state, 10**15, LEASE)) == state
    assert folded(state) is state
