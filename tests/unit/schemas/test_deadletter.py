"""Which messages become dead letters, with which reason and headers."""

from __future__ import annotations

import pytest

from runstream.contract import Codec, EventBatch, Producer, encode_batch
from runstream.contract.deadletter import OFFSET, PARTITION, REASON, TOPIC, DeadLetter, read_message

CODEC = Codec()
GOOD = encode_batch(CODEC, EventBatch("run-1", Producer("p", "h", 1), 0))


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (b"run-1", b"garbage bytes", "framing"),
        (b"run-1", GOOD[:11], "truncated"),
        (b"run-1", b"\xc3\x01" + b"\x00" * 8 + GOOD[10:], "fingerprint"),
        (b"run-1", None, "empty"),
        (b"run-2", GOOD, "key"),
    ],
)
def test_a_refused_message_is_a_dead_letter_with_its_reason(
    key: bytes, value: bytes | None, reason: str
) -> None:
    letter = read_message(CODEC, "events", 3, 42, key, value)
    assert isinstance(letter, DeadLetter)
    assert letter.reason == reason
    headers = dict(letter.headers())
    assert headers[REASON] == reason.encode()
    assert (headers[TOPIC], headers[PARTITION], headers[OFFSET]) == (b"events", b"3", b"42")


def test_a_valid_message_is_its_batch() -> None:
    assert read_message(CODEC, "events", 0, 0, b"run-1", GOOD) == EventBatch(
        "run-1", Producer("p", "h", 1), 0
    )
