"""What the processor refuses to apply (and dead-letters instead)."""

from __future__ import annotations

import pytest

from runstream.contract.events import (
    ArtifactLogged,
    Event,
    EventBatch,
    ExperimentCreated,
    ExperimentRenamed,
    LoggedModelCreated,
    LoggedModelFinalized,
    LogLine,
    MetricColumns,
    MetricLogged,
    ParamLogged,
    Producer,
    RunEnded,
    RunStarted,
    TagSet,
)
from runstream.contract.exceptions import (
    InvalidEventError,
    UnsafeArtifactPathError,
    UnsafeRunIdError,
)
from runstream.contract.identifiers import check_artifact_path, check_run_id
from runstream.contract.validation import validate_batch

PRODUCER = Producer("p", "h", 1)
_FIVE = MetricColumns(["a"], [0] * 6, [1] * 6, [1.0] * 6, [1] * 6)


@pytest.mark.parametrize(
    ("batch", "key", "reason"),
    [
        (EventBatch("../etc", PRODUCER, 0), None, "run_id"),
        (EventBatch("r", PRODUCER, 0), b"other", "key"),
        (EventBatch("r", PRODUCER, -1), None, "sequence"),
        (
            EventBatch("r", PRODUCER, 0, (), MetricColumns(["a"], [0], [1, 2], [1.0], [1])),
            None,
            "columns",
        ),
        (
            EventBatch("r", PRODUCER, 0, (), MetricColumns(["a"], [1], [1], [1.0], [1])),
            None,
            "columns",
        ),
        (EventBatch("r", PRODUCER, 0, (Event(1, RunEnded("RUNNING", 1)),)), None, "status"),
        (EventBatch("r", PRODUCER, 0, (Event(1, TagSet("k", "v", "other")),)), None, "namespace"),
    ],
)
def test_a_broken_rule_names_its_reason(batch: EventBatch, key: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidEventError) as caught:
        validate_batch(batch, key)
    assert caught.value.reason == reason


def test_a_valid_batch_passes() -> None:
    batch = EventBatch("r", PRODUCER, 0, (), MetricColumns(["a"], [0], [1], [1.0], [1]))
    assert validate_batch(batch, b"r") is batch


def _event(payload: object) -> EventBatch:
    return EventBatch("r", PRODUCER, 0, (Event(1, payload),))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("batch", "reason"),
    [
        (EventBatch("r", PRODUCER, 2**63 - 5, (), _FIVE), "sequence"),
        (
            EventBatch("r", PRODUCER, 2**63 - 1, (Event(1, RunEnded("FINISHED", 1)),) * 2),
            "sequence",
        ),
        (EventBatch("abc\n", PRODUCER, 0), "run_id"),
        (EventBatch("../../x", PRODUCER, 0), "run_id"),
        (EventBatch("r", Producer("", "h", 1), 0), "producer"),
        (EventBatch("r", Producer("\U0001f600" * 10, "h", 1), 0), "producer"),
        (EventBatch("r", Producer("p" * 257, "h", 1), 0), "producer"),
        (
            EventBatch("r", PRODUCER, 0, (), MetricColumns(["k" * 100_000], [0], [1], [1.0], [1])),
            "metric_key",
        ),
        (
            EventBatch("r", PRODUCER, 0, (), MetricColumns(["a\n"], [0], [1], [1.0], [1])),
            "metric_key",
        ),
        (_event(MetricLogged("", 1.0, 1, 1)), "metric_key"),
        (_event(ParamLogged("p", "v" * 500_000)), "param"),
        (_event(ParamLogged("p" * 257, "v")), "param"),
        (_event(TagSet("t", "v" * 5001)), "tag"),
        (_event(RunStarted(1, "n", tags={"t": "v" * 5001})), "tag"),
        (_event(RunStarted(1, "n" * 251)), "text"),
        (_event(ArtifactLogged("ok\n", "s3://b/x")), "artifact_path"),
        (_event(ArtifactLogged("../x", "s3://b/x")), "artifact_path"),
        (_event(LogLine("loud", "x", {})), "level"),
        (_event(ExperimentCreated("e" * 251)), "text"),
        (_event(ExperimentRenamed("e" * 251)), "text"),
        (_event(LoggedModelCreated("m", "7" * 251)), "text"),
        (_event(LoggedModelCreated("m", "7", "r" * 251)), "text"),
        (_event(LoggedModelFinalized("S" * 251)), "text"),
    ],
)
def test_what_the_sdk_would_refuse_is_refused_on_the_wire(batch: EventBatch, reason: str) -> None:
    with pytest.raises(InvalidEventError) as caught:
        validate_batch(batch)
    assert caught.value.reason == reason


def test_the_limits_themselves_pass() -> None:
    batch = EventBatch(
        "r",
        PRODUCER,
        2**63 - 6,
        (Event(1, ParamLogged("p" * 250, "v" * 6000)), Event(1, TagSet("t", "v" * 5000))),
        MetricColumns(["k" * 250], [0, 0, 0, 0], [-(2**63), -1, 0, 2**63 - 1], [1.0] * 4, [0] * 4),
    )
    assert validate_batch(batch) is batch


def test_columns_decoded_apart_count_in_the_sequence_range() -> None:
    batch = EventBatch("r", PRODUCER, 2**63 - 3)
    assert validate_batch(batch, column_keys=["a"], column_points=3) is batch
    with pytest.raises(InvalidEventError, match="sequences"):
        validate_batch(batch, column_keys=["a"], column_points=4)
    with pytest.raises(InvalidEventError) as caught:
        validate_batch(EventBatch("r", PRODUCER, 0), column_keys=["a!"], column_points=1)
    assert caught.value.reason == "metric_key"


@pytest.mark.parametrize("path", ["ok\n", "a/ok\n", "ok\n/b"])
def test_an_artifact_path_with_a_trailing_newline_is_unsafe(path: str) -> None:
    with pytest.raises(UnsafeArtifactPathError):
        check_artifact_path(path)


@pytest.mark.parametrize("run_id", ["abc\n", "abc\r\n"])
def test_a_run_id_with_a_trailing_newline_is_unsafe(run_id: str) -> None:
    with pytest.raises(UnsafeRunIdError):
        check_run_id(run_id)
