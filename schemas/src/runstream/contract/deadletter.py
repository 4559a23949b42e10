"""The edge of every reader of the event log: a message is its batch or its dead letter.

:func:`read_message` is the one check the processor, replay, the compactor and the query
tail apply to each message (framing, schema, then :func:`validate_batch`). It never raises
for bad data: whatever a message holds, the reader gets a batch it can apply safely or a
:class:`DeadLetter` with the reason, and goes on.

A dead letter keeps the original key and value unchanged; its headers say why it was
refused and where it came from, so it can be inspected and re-sent after a fix. The writer
of run state sends them (the processor to ``runstream.events.dlq``; the embedded pipeline to
its dead-letter file); the other readers, refusing exactly the same messages, count them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from runstream.contract.codec import Codec
from runstream.contract.events import EventBatch, decode_batch
from runstream.contract.exceptions import DecodeError, InvalidEventError
from runstream.contract.validation import validate_batch

logger = logging.getLogger(__name__)

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
    ``schema``, ``run_id``, ``key``, ``sequence``, ``columns``, ``metric_key``, ...;
    ``empty`` for a null value), and any other error of the decoder ``undecodable``.
    """
    if value is None:
        return DeadLetter(topic, partition, offset, key, value, "empty", "message has no value")
    try:
        return validate_batch(decode_batch(codec, value), key)
    except (DecodeError, InvalidEventError) as error:
        return DeadLetter(topic, partition, offset, key, value, error.reason, str(error))
    except Exception as error:  # a decoder bug must not stop a reader either
        logger.exception("unexpected error decoding %s[%d]@%d", topic, partition, offset)
        return DeadLetter(topic, partition, offset, key, value, "undecodable", repr(error))
