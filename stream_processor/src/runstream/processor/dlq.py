"""Dead letters: messages of the event log that cannot be applied, with why and where from.

A dead letter keeps the original key and value unchanged; its headers say why it was
refused and where it came from, so it can be inspected and re-sent after a fix.
"""

from __future__ import annotations

from dataclasses import dataclass

from runstream.contract.codec import Codec
from runstream.contract.events import EventBatch, decode_batch
from runstream.contract.exceptions import DecodeError, InvalidEventError
from runstream.contract.validation import validate_batch

REASON = "runstream.error.reason"
MESSAGE = "runstream.error.message"
TOPIC = "runstream.source.topic"
PARTITION = "runstream.source.partition"
OFFSET = "runstream.source.offset"
_MAX_MESSAGE = 1000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A refused message: where it came from, its bytes and why it was refused."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    message: str

    def headers(self) -> list[tuple[str, bytes]]:
        """The Kafka headers of this dead letter: reason, message, source topic/partition/offset."""
        return [
            (REASON, self.reason.encode()),
            (MESSAGE, self.message[:_MAX_MESSAGE].encode()),
            (TOPIC, self.topic.encode()),
            (PARTITION, str(self.partition).encode()),
            (OFFSET, str(self.offset).encode()),
        ]


def read_message(
    codec: Codec, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
) -> EventBatch | DeadLetter:
    """Decode and validate one message of the event log: its batch, or its dead letter.

    Never raises for bad data: every DecodeError and InvalidEventError becomes a DeadLetter
    whose reason is the error's (``framing``, ``fingerprint``, ``truncated``, ``body``,
    ``schema``, ``run_id``, ``key``, ``columns``, ...; ``empty`` for a null value).
    """
    if value is None:
        return DeadLetter(topic, partition, offset, key, value, "empty", "message has no value")
    try:
        return validate_batch(decode_batch(codec, value), key)
    except (DecodeError, InvalidEventError) as error:
        return DeadLetter(topic, partition, offset, key, value, error.reason, str(error))
