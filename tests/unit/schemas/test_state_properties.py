"""Property tests of the reducer: order, duplication and chunking never change the state,
and the state equals a naive model written plainly here."""

from __future__ import annotations

import math
import struct
from collections import defaultdict
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from runstream.contract.events import (
    ArtifactLogged,
    Event,
    EventBatch,
    ExperimentCreated,
    ExperimentDeleted,
    ExperimentRenamed,
    ExperimentRestored,
    Heartbeat,
    LoggedModelCreated,
    LoggedModelFinalized,
    LogicalEvent,
    LogLine,
    MetricColumns,
    MetricLogged,
    ParamLogged,
    Producer,
    RunDeleted,
    RunEnded,
    RunRestored,
    RunStarted,
    RunUpdated,
    TagSet,
)
from runstream.contract.state import RunState, apply, apply_batch, fold, merge

RUNS = ("r1", "r2")
KEYS = ("a", "b", "c")
VALUES = ("x", "y", "z")
TIMES = st.integers(0, 5)  # few distinct times: ties are decided by producer and sequence
FLOATS = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, math.inf, -math.inf, math.nan]),
    st.floats(-10, 10),
)

payloads = st.one_of(
    st.builds(
        RunStarted,
        start_time_us=st.integers(0, 100),
        name=st.none() | st.sampled_from(VALUES),
        collection=st.none() | st.sampled_from(VALUES),
        tags=st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=2),
        git_commit=st.none() | st.sampled_from(VALUES),
        git_dirty=st.none() | st.booleans(),
    ),
    st.builds(ParamLogged, st.sampled_from(KEYS), st.sampled_from(VALUES)),
    st.builds(MetricLogged, st.sampled_from(KEYS), FLOATS, st.integers(0, 3), st.integers(0, 3)),
    st.builds(
        TagSet, st.sampled_from(KEYS), st.sampled_from(VALUES), st.sampled_from(("tags", "labels"))
    ),
    st.builds(RunEnded, st.sampled_from(("FINISHED", "FAILED", "KILLED")), st.integers(0, 100)),
    st.builds(LogLine, st.just("INFO"), st.sampled_from(VALUES)),
    st.builds(RunUpdated, st.none() | st.sampled_from(VALUES), st.none() | st.sampled_from(VALUES)),
    st.builds(RunDeleted, st.none() | st.sampled_from(VALUES)),
    st.builds(RunRestored),
    st.builds(ExperimentCreated, st.sampled_from(VALUES)),
    st.builds(ExperimentRenamed, st.sampled_from(VALUES)),
    st.builds(ExperimentDeleted),
    st.builds(ExperimentRestored),
    st.builds(
        LoggedModelCreated,
        st.sampled_from(VALUES),
        st.sampled_from(VALUES),
        st.none() | st.sampled_from(VALUES),
        st.none() | st.sampled_from(VALUES),
    ),
    st.builds(LoggedModelFinalized, st.sampled_from(("READY", "FAILED"))),
    st.builds(
        ArtifactLogged,
        st.sampled_from(("a.txt", "model/model.pkl")),
        st.sampled_from(VALUES),
        st.integers(0, 2),
        st.sampled_from(VALUES),
        st.sampled_from(("text/plain", "application/octet-stream")),
    ),
    st.builds(Heartbeat, st.integers(0, 3)),
)
point = st.tuples(st.integers(0, 2), st.integers(0, 3), FLOATS, st.integers(0, 3))


@st.composite
def streams(draw: st.DrawFn) -> list[EventBatch]:
    """Batches of two runs by up to three producers, with contiguous sequences per producer."""
    batches = []
    for number in range(draw(st.integers(1, 3))):
        producer = Producer(f"p{number}", "host", number)
        sequence = draw(st.integers(0, 3))
        for _ in range(draw(st.integers(0, 4))):
            events = draw(st.lists(st.builds(Event, TIMES, payloads), max_size=4))
            points = draw(st.lists(point, max_size=6))
            columns = MetricColumns(
                list(KEYS),
                [p[0] for p in points],
                [p[1] for p in points],
                [p[2] for p in points],
                [p[3] for p in points],
            )
            batch = EventBatch(
                draw(st.sampled_from(RUNS)), producer, sequence, tuple(events), columns
            )
            sequence += len(batch)
            batches.append(batch)
    return batches


# --- the naive model -------------------------------------------------------------------------


def bits(value: float) -> bytes:
    return struct.pack("<d", value)


def naive(batches: list[EventBatch]) -> dict[str, dict[str, Any]]:
    """Each run's plain view, computed directly from the set of distinct events."""
    events: dict[str, dict[tuple[Any, ...], Any]] = {batch.run_id: {} for batch in batches}
    for batch in batches:
        for event in batch.logical_events():
            identity = (event.time_us, event.id.producer, event.id.sequence)
            events[batch.run_id][identity] = event.payload
    return {
        run: naive_run(run, [(*identity, payload) for identity, payload in found.items()])
        for run, found in events.items()
    }


def latest(candidates: list[tuple[tuple[Any, ...], Any]]) -> Any:
    return max(candidates, key=lambda c: (c[0], c[1]))[1] if candidates else None


def naive_run(run_id: str, events: list[tuple[Any, ...]]) -> dict[str, Any]:
    registers: dict[str, list[tuple[tuple[Any, ...], Any]]] = defaultdict(list)
    keyed: dict[str, dict[str, list[tuple[tuple[Any, ...], Any]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    points: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    starts, started, deletions = [], [], []
    heard = [time_us for time_us, _, _, payload in events if not isinstance(payload, MetricLogged)]
    for time_us, producer, sequence, payload in events:
        order = (time_us, producer, sequence)
        if isinstance(payload, RunStarted):
            started.append(order)
            starts.append(payload.start_time_us)
            registers["status"].append((order, "RUNNING"))
            if payload.name is not None:
                registers["name"].append((order, payload.name))
            if payload.collection is not None:
                registers["collection"].append((order, payload.collection))
            for key, value in payload.tags.items():
                keyed["tags"][key].append((order, value))
            if payload.git_commit is not None:
                keyed["source"]["git_commit"].append((order, payload.git_commit))
            if payload.git_dirty is not None:
                keyed["source"]["git_dirty"].append(
                    (order, "true" if payload.git_dirty else "false")
                )
        elif isinstance(payload, ParamLogged):
            keyed["params"][payload.key].append((order, payload.value))
        elif isinstance(payload, TagSet):
            keyed[payload.namespace][payload.key].append((order, payload.value))
        elif isinstance(payload, RunEnded):
            registers["status"].append((order, payload.status))
            registers["end"].append((order, payload.end_time_us))
        elif isinstance(payload, RunUpdated):
            if payload.name is not None:
                registers["name"].append((order, payload.name))
            if payload.collection is not None:
                registers["collection"].append((order, payload.collection))
        elif isinstance(payload, RunDeleted | ExperimentDeleted):
            deletions.append(order)
        elif isinstance(payload, RunRestored | ExperimentRestored):
            started.append(order)
        elif isinstance(payload, ExperimentCreated):
            started.append(order)
            starts.append(time_us)
            registers["name"].append((order, payload.name))
        elif isinstance(payload, ExperimentRenamed):
            registers["name"].append((order, payload.name))
        elif isinstance(payload, LoggedModelCreated):
            started.append(order)
            starts.append(time_us)
            registers["name"].append((order, payload.name))
            registers["collection"].append((order, payload.experiment_id))
            for key in ("source_run_id", "model_type"):
                if getattr(payload, key) is not None:
                    keyed["source"][key].append((order, getattr(payload, key)))
        elif isinstance(payload, LoggedModelFinalized):
            registers["status"].append((order, payload.status))
        elif isinstance(payload, ArtifactLogged):
            stored = (payload.uri, payload.size, payload.sha256, payload.media_type)
            keyed["artifacts"][payload.path].append((order, stored))
        elif isinstance(payload, MetricLogged):
            points[payload.key].append(
                (payload.step, payload.timestamp, producer, sequence, payload.value)
            )
    metrics = {}
    for key, found in points.items():
        best = max(found, key=lambda p: p[:4])
        numbers = [p[4] for p in found if not math.isnan(p[4])]
        low = min(numbers) + 0.0 if numbers else math.nan
        high = max(numbers) + 0.0 if numbers else math.nan
        metrics[key] = (bits(best[4]), best[0], best[1], bits(low), bits(high))
    return {
        "run_id": run_id,
        "name": latest(registers["name"]),
        "collection": latest(registers["collection"]),
        "status": latest(registers["status"]),
        "start_time_us": min(starts) if starts else None,
        "end_time_us": latest(registers["end"]),
        "deleted": bool(deletions) and (not started or max(deletions) > max(started)),
        "params": {k: latest(v) for k, v in keyed["params"].items()},
        "tags": {k: latest(v) for k, v in keyed["tags"].items()},
        "labels": {k: latest(v) for k, v in keyed["labels"].items()},
        "source": {k: latest(v) for k, v in keyed["source"].items()},
        "metrics": metrics,
        "artifacts": {
            path: dict(zip(("uri", "size", "sha256", "media_type"), latest(v), strict=True))
            for path, v in keyed["artifacts"].items()
        },
        "last_heard_us": max(heard) if heard else None,
        "heartbeats": any(isinstance(event[3], Heartbeat) for event in events),
    }


def plain(state: RunState) -> dict[str, Any]:
    view = state.as_dict()
    view["metrics"] = {
        key: (bits(m["value"]), m["step"], m["timestamp"], bits(m["min"]), bits(m["max"]))
        for key, m in view["metrics"].items()
    }
    view["last_heard_us"] = state.last_heard_us
    view["heartbeats"] = state.heartbeats
    return view


# --- the properties --------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(streams())
def test_equals_the_naive_model(batches: list[EventBatch]) -> None:
    states = fold(batches)
    assert {run: plain(state) for run, state in states.items()} == naive(batches)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_permutation_and_duplication_gives_the_same_state(data: st.DataObject) -> None:
    batches = data.draw(streams())
    duplicated = batches + data.draw(
        st.lists(st.sampled_from(batches), max_size=5) if batches else st.just([])
    )
    shuffled = data.draw(st.permutations(duplicated))
    assert fold(shuffled) == fold(batches)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_single_events_in_any_order_equal_whole_batches(data: st.DataObject) -> None:
    batches = data.draw(streams())
    singles: list[tuple[str, LogicalEvent]] = [
        (batch.run_id, event) for batch in batches for event in batch.logical_events()
    ]
    shuffled = data.draw(st.permutations(singles + singles[: data.draw(st.integers(0, 5))]))
    states = {batch.run_id: RunState(batch.run_id) for batch in batches}  # empty batches too
    for run_id, event in shuffled:
        states[run_id] = apply(states.get(run_id), run_id, event)
    assert states == fold(batches)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_folding_chunks_and_merging_equals_folding_at_once(data: st.DataObject) -> None:
    batches = data.draw(streams())
    cuts = sorted(data.draw(st.lists(st.integers(0, len(batches)), max_size=4)))
    chunks = [batches[a:b] for a, b in zip([0, *cuts], [*cuts, len(batches)], strict=True)]
    merged: dict[str, RunState] = {}
    for chunk in data.draw(st.permutations(chunks)):
        for run_id, state in fold(chunk).items():
            merged[run_id] = merge(merged[run_id], state) if run_id in merged else state
    assert merged == fold(batches)


@settings(max_examples=100, deadline=None)
@given(streams())
def test_merge_is_idempotent(batches: list[EventBatch]) -> None:
    once = fold(batches)
    for run_id, state in fold(batches).items():
        assert merge(state, once[run_id].copy()) == once[run_id]


@given(streams())
@settings(max_examples=50, deadline=None)
def test_apply_batch_updates_the_given_state_and_returns_it(batches: list[EventBatch]) -> None:
    for batch in batches:
        state = RunState(batch.run_id)
        assert apply_batch(state, batch) is state
