"""Event sources: where the pipeline reads message batches from.

The pipeline (replay, compactor, query tail) is written once over :class:`EventSource`;
:class:`KafkaSource` reads a topic, and the embedded mode's local log reader implements the
same protocol. A :class:`Record` is one message: its partition and offset (for a local log:
the file's number and the batch's index in it), key and value.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from runstream.errors import RunstreamError
from runstream.settings import Settings

logger = logging.getLogger(__name__)


class SourceError(RunstreamError):
    """The event source failed (broker unreachable, topic missing, ...)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One message of an event source."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int = 0


class EventSource(Protocol):
    """A stream of records with positions that can be committed."""

    def poll(self, max_records: int, timeout: float) -> list[Record]:
        """Return up to ``max_records`` records, waiting at most ``timeout`` seconds."""
        ...

    def commit(self, positions: Mapping[int, int]) -> None:
        """Remember, per partition, the offset of the next record to read."""
        ...

    def close(self) -> None:
        """Release the source."""
        ...


class KafkaSource:
    """A consumer-group member of ``topic`` with manual commits (offsets only via commit).

    Args:
        settings: resolved settings (bootstrap servers, pass-through client properties).
        topic: the topic to read.
        group_id: the consumer group.
        client: extra librdkafka properties on top of the settings'.
    """

    def __init__(
        self, settings: Settings, topic: str, group_id: str, client: Mapping[str, Any] | None = None
    ) -> None:
        self.topic = topic
        self._consumer = Consumer(
            settings.kafka_config(
                **{
                    "group.id": group_id,
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "auto.offset.reset": "earliest",
                    "partition.assignment.strategy": "cooperative-sticky",
                    **(client or {}),
                }
            )
        )
        self._consumer.subscribe([topic])

    def poll(self, max_records: int, timeout: float) -> list[Record]:
        """Up to ``max_records`` records (fewer after ``timeout`` seconds).

        Raises:
            SourceError: the consumer reported a fatal error.
        """
        messages = self._consumer.consume(max_records, timeout)
        return [record for message in messages if (record := _to_record(message)) is not None]

    def commit(self, positions: Mapping[int, int]) -> None:
        """Commit synchronously ``partition -> next offset``.

        Raises:
            SourceError: the commit failed.
        """
        if not positions:
            return
        offsets = [TopicPartition(self.topic, p, o) for p, o in positions.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            raise SourceError(
                f"commit of {dict(positions)} on {self.topic} failed: {error}"
            ) from error

    def assignment(self) -> list[int]:
        """The partitions this member holds now."""
        return [tp.partition for tp in self._consumer.assignment()]

    def close(self) -> None:
        """Leave the group."""
        self._consumer.close()


def read_topic(
    settings: Settings,
    topic: str,
    *,
    start: Mapping[int, int] | None = None,
    timeout: float = 10.0,
) -> Iterator[Record]:
    """Every record of ``topic`` from ``start`` (default: the beginning) up to the end offsets
    seen when called, partition by partition interleaved as Kafka delivers them. No group.

    Raises:
        SourceError: the topic does not exist or the broker does not answer in ``timeout``.
    """
    consumer = Consumer(
        settings.kafka_config(
            **{
                "group.id": "runstream-reader",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise SourceError(f"topic {topic} does not exist or cannot be read")
        remaining: dict[int, int] = {}
        assignment = []
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout
            )
            first = (start or {}).get(partition, low)
            if high > max(first, low):
                remaining[partition] = high
                assignment.append(
                    TopicPartition(topic, partition, first if start else OFFSET_BEGINNING)
                )
        if not assignment:
            return
        consumer.assign(assignment)
        progress = time.monotonic()
        while remaining:
            messages = consumer.consume(10_000, 0.2)  # returns early: never waits for 10k
            if not messages:  # compaction or control records may hide the last offsets
                for tp in consumer.position([TopicPartition(topic, p) for p in remaining]):
                    if tp.offset >= remaining[tp.partition]:
                        del remaining[tp.partition]
                if remaining and time.monotonic() - progress > timeout:
                    raise SourceError(
                        f"no progress reading {topic} for {timeout:g} s; partitions left: "
                        f"{sorted(remaining)}"
                    )
                continue
            progress = time.monotonic()
            for message in messages:
                record = _to_record(message)
                if record is None or record.partition not in remaining:
                    continue
                yield record
                if record.offset + 1 >= remaining[record.partition]:
                    del remaining[record.partition]
    except KafkaException as error:
        raise SourceError(f"reading {topic} failed: {error}") from error
    finally:
        consumer.close()


def _to_record(message: Any) -> Record | None:
    error = message.error()
    if error is not None:
        if error.code() == KafkaError._PARTITION_EOF:
            return None
        if error.fatal():
            raise SourceError(f"consumer error: {error.str()}")
        logger.warning("consumer error: %s", error.str())
        return None
    _, timestamp = message.timestamp()
    return Record(message.partition(), message.offset(), message.key(), message.value(), timestamp)
