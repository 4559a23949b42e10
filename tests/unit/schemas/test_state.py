"""The reducer's documented rules, case by case, and its Avro form."""

from __future__ import annotations

import io
import json
import math
from importlib import resources
from pathlib import Path

import fastavro
import pytest

from runstream.contract import Codec
from runstream.contract.events import (
    Event,
    EventBatch,
    MetricColumns,
    ParamLogged,
    Producer,
    RunDeleted,
    RunEnded,
    RunStarted,
    TagSet,
)
from runstream.contract.exceptions import StateError
from runstream.contract.state import (
    RunState,
    apply_batch,
    decode_state,
    encode_state,
    fold,
)
from runstream.processor.synthetic import workload

SCHEMA = Path(str(resources.files("runstream.contract").joinpath("avro", "run_state.v4.avsc")))


def batch(producer: str, first: int, *events: tuple[int, object], run: str = "r") -> EventBatch:
    return EventBatch(
        run,
        Producer(producer, "h", 1),
        first,
        tuple(Event(t, p) for t, p in events),  # type: ignore[arg-type]
    )


def test_a_deleted_run_stays_deleted_after_later_events() -> None:
    state = fold(
        [
            batch("p", 0, (10, RunStarted(10)), (20, RunDeleted("gone"))),
            batch("p", 2, (30, ParamLogged("lr", "0.1"))),
        ]
    )["r"]
    assert state.is_deleted
    assert state.params_dict() == {"lr": "0.1"}


def test_a_newer_run_started_brings_a_deleted_run_back() -> None:
    state = fold(
        [
            batch("p", 2, (40, RunStarted(40))),
            batch("p", 0, (10, RunStarted(10)), (20, RunDeleted())),
        ]
    )["r"]
    assert not state.is_deleted
    assert state.start_time_us == 10


def test_a_deletion_arriving_first_hides_the_run() -> None:
    assert fold([batch("p", 0, (5, RunDeleted())), batch("q", 0, (1, RunStarted(1)))])[
        "r"
    ].is_deleted


def test_status_and_end_time_come_from_the_greatest_event() -> None:
    state = fold(
        [
            batch("p", 0, (100, RunEnded("FAILED", 100))),
            batch("p", 1, (50, RunStarted(50)), (90, RunEnded("FINISHED", 90))),
        ]
    )["r"]
    assert (state.status_value, state.end_time_us) == ("FAILED", 100)


def test_metric_latest_is_by_step_not_by_arrival_or_value() -> None:
    columns = MetricColumns(["loss"], [0, 0, 0], [5, 3, 5], [0.5, 9.0, math.nan], [10, 20, 9])
    state = apply_batch(None, EventBatch("r", Producer("p", "h", 1), 0, (), columns))
    summary = state.metrics["loss"]
    assert (summary.step, summary.timestamp, summary.value) == (5, 10, 0.5)
    assert (summary.min, summary.max, summary.last_step) == (0.5, 9.0, 5)


def test_a_state_of_another_run_is_refused() -> None:
    with pytest.raises(StateError, match="'other'"):
        apply_batch(RunState("other"), batch("p", 0, (1, RunStarted(1))))


def test_encode_decode_round_trip_and_sorted_bytes() -> None:
    codec = Codec()
    states = fold(workload(5, 2_000, seed=3).batches)
    for state in states.values():
        data = encode_state(codec, state)
        assert decode_state(codec, data) == state
        reversed_maps = state.copy()
        reversed_maps.metrics = dict(reversed(list(state.metrics.items())))
        reversed_maps.params = dict(reversed(list(state.params.items())))
        assert encode_state(codec, reversed_maps) == data


def test_a_standard_avro_reader_reads_our_bytes() -> None:
    state = fold([batch("p", 0, (1, RunStarted(1, name="n")), (2, TagSet("k", "v", "labels")))])[
        "r"
    ]
    data = encode_state(Codec(), state)
    schema = fastavro.parse_schema(json.loads(SCHEMA.read_text()))
    record = fastavro.schemaless_reader(io.BytesIO(data[10:]), schema, None)
    assert data[:2] == b"\xc3\x01"
    assert record["name"]["value"] == "n"
    assert record["labels"]["k"]["value"] == "v"
    assert record["status"]["value"] == "RUNNING"
