"""What the processor refuses to apply (and dead-letters instead)."""

from __future__ import annotations

import pytest

from runstream.contract.events import Event, EventBatch, MetricColumns, Producer, RunEnded, TagSet
from runstream.contract.exceptions import InvalidEventError
from runstream.contract.validation import validate_batch

PRODUCER = Producer("p", "h", 1)


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
