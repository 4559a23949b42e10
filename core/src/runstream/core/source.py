"""Event sources: where the pipeline reads message batches from.

The pipeline (replay, compactor, query tail) is written once over :class:`EventSource`;
:class:`KafkaSource` reads a topic, and the embedded mode's local log reader implements the
same protocol. A :class:`Record` is one message: its partition and offset (for a local log:
the file's number and the batch's index in it), key and value.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from runstream.core.errors import RunstreamError
from runstream.core.settings import Settings

logger = logging.getLogger(__name__)


_NOT_READY = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_PARTITION,
        # a leader of a replicated topic died: its handle is gone, and the replica elected in
        # its place answers this until its high watermark has caught up
        KafkaError._DESTROY_BROKER,
        KafkaError._TRANSPORT,
        KafkaError.OFFSET_NOT_AVAILABLE,
    }
)
"""Errors of a topic whose partitions are still getting leaders (just created, or their
leader died and another replica takes over)."""


class SourceError(RunstreamError):
    """The event source failed (broker unreachable, topic missing, ...)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One message of an event source (``value`` None: a Kafka message with a null value)."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
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
        self._revoke: Callable[[list[int], bool], None] | None = None
        self._consumer.subscribe([topic], on_revoke=self._revoked, on_lost=self._lost)

    def on_revoke(self, handler: Callable[[list[int], bool], None]) -> None:
        """Call ``handler(partitions, lost)`` when partitions are taken from this member,
        inside :meth:`poll` and before the group hands them to another member (``lost``:
        the member was too slow and they already belong to another; commits fail then).
        Exceptions of ``handler`` come out of :meth:`poll`."""
        self._revoke = handler

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._revoke is not None:
            self._revoke([tp.partition for tp in partitions], False)

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._revoke is not None:
            self._revoke([tp.partition for tp in partitions], True)

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


class TopicReader:
    """Reads a topic from given positions up to its end offsets as seen at each call, with
    one long-lived consumer (no group membership, no commits) assigned to exactly the
    partitions that have new records. Polls with a short wait: new records arrive in
    milliseconds. Used by replay, the query tail and ``read_topic``.

    Args:
        settings: resolved settings (bootstrap servers, pass-through client properties).
        topic: the topic to read.
        timeout: seconds to wait for metadata, and for the end offsets to be reached.
    """

    def __init__(self, settings: Settings, topic: str, timeout: float = 30.0) -> None:
        self.topic = topic
        self._timeout = timeout
        self._consumer = Consumer(
            {
                # a reader catches up on a backlog: up to 16 MB of a partition per fetch
                # (librdkafka's default, 1 MB, took 12 round trips for 12 MB); the user's
                # setting wins
                "max.partition.fetch.bytes": 16 << 20,
                **settings.kafka_config(
                    **{
                        "group.id": f"runstream-reader-{uuid.uuid4().hex}",
                        "enable.auto.commit": False,
                        "enable.auto.offset.store": False,
                        "auto.offset.reset": "earliest",
                        "enable.partition.eof": False,
                    }
                ),
            }
        )

    def read(
        self, start: Mapping[int, int] | None = None, partitions: Collection[int] | None = None
    ) -> Iterator[Record]:
        """Records from ``start`` (partition -> next offset; others from the beginning) up to
        the end offsets seen when called; of ``partitions`` only, when given.

        Raises:
            SourceError: the topic does not exist, or the end is not reached in time.
        """
        start = start or {}
        try:
            ends = self.end_offsets(partitions)
            wanted = {
                p: high
                for p, (low, high) in ends.items()
                if high > max(start.get(p, low), low) and (partitions is None or p in partitions)
            }
            if not wanted:
                return
            self._consumer.assign(
                [TopicPartition(self.topic, p, max(start.get(p, 0), ends[p][0])) for p in wanted]
            )
            # the timeout bounds a stall, not the whole read: a long backlog read by a slow
            # caller (the generator's consumer) keeps going as long as records come
            deadline = time.monotonic() + self._timeout
            while wanted:
                if time.monotonic() > deadline:
                    raise SourceError(
                        f"{self.topic}: end offsets {wanted} not reached "
                        f"({self._timeout:g} s without a record)"
                    )
                for message in self._consumer.consume(10_000, 0.05):
                    record = _to_record(message)
                    if record is None or record.partition not in wanted:
                        continue
                    yield record
                    deadline = time.monotonic() + self._timeout
                    if record.offset + 1 >= wanted[record.partition]:
                        del wanted[record.partition]
                if wanted:  # transaction markers or compaction can hide the last offsets
                    for tp in self._consumer.position(
                        [TopicPartition(self.topic, p) for p in wanted]
                    ):
                        if tp.offset >= wanted[tp.partition]:
                            del wanted[tp.partition]
        except KafkaException as error:
            raise SourceError(f"reading {self.topic} failed: {error}") from error
        finally:
            self._consumer.unassign()

    def end_offsets(self, partitions: Collection[int] | None = None) -> dict[int, tuple[int, int]]:
        """Partition -> (low, high) watermark, asked of the broker now (of ``partitions``
        only, when given). Retried while the broker answers with a retriable error (a
        partition leader still being elected just after the topic was created), up to the
        reader's timeout.

        Raises:
            SourceError: the topic does not exist or cannot be read.
        """
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                return self._watermarks(partitions)
            except KafkaException as error:
                kafka_error = error.args[0]
                retriable = kafka_error.retriable() or kafka_error.code() in _NOT_READY
                if not retriable or time.monotonic() > deadline:
                    raise
                logger.debug("watermarks of %s not ready, retrying: %s", self.topic, error)
                time.sleep(0.1)

    def partition_count(self) -> int:
        """How many partitions the topic has (from the cluster's metadata).

        Raises:
            SourceError: the topic does not exist or cannot be read.
        """
        try:
            return len(self._partitions())
        except KafkaException as error:
            raise SourceError(f"metadata of {self.topic}: {error}") from error

    def _partitions(self) -> list[int]:
        metadata = self._consumer.list_topics(self.topic, timeout=self._timeout).topics.get(
            self.topic
        )
        if metadata is None or metadata.error is not None:
            raise SourceError(f"topic {self.topic} does not exist or cannot be read")
        return list(metadata.partitions)

    def _watermarks(self, partitions: Collection[int] | None) -> dict[int, tuple[int, int]]:
        wanted = [
            p for p in self._partitions() if partitions is None or p in partitions
        ]  # one round trip per partition: only those asked for
        return {
            p: self._consumer.get_watermark_offsets(
                TopicPartition(self.topic, p), timeout=self._timeout, cached=False
            )
            for p in wanted
        }

    def close(self) -> None:
        """Close the consumer."""
        self._consumer.close()

    def __repr__(self) -> str:
        return f"TopicReader({self.topic!r})"


def committed_offsets(
    settings: Settings, topic: str, group: str, timeout: float = 30.0
) -> dict[int, int]:
    """Partition -> the next offset consumer group ``group`` has committed on ``topic``
    (partitions it never committed are left out). Asks the group coordinator; joins nothing.

    Raises:
        SourceError: the topic does not exist, or the broker does not answer in time.
    """
    consumer = Consumer(settings.kafka_config(**{"group.id": group, "enable.auto.commit": False}))
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise SourceError(f"topic {topic} does not exist or cannot be read")
        wanted = [TopicPartition(topic, p) for p in metadata.partitions]
        committed = consumer.committed(wanted, timeout=timeout)
    except KafkaException as error:
        raise SourceError(f"committed offsets of {group} on {topic}: {error}") from error
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in committed if tp.offset >= 0 and tp.error is None}


def read_topic(
    settings: Settings,
    topic: str,
    *,
    start: Mapping[int, int] | None = None,
    timeout: float = 30.0,
) -> Iterator[Record]:
    """Every record of ``topic`` from ``start`` (default: the beginning) up to the end
    offsets seen when called, with a reader of its own.

    Raises:
        SourceError: the topic does not exist or the end is not reached in ``timeout``.
    """
    reader = TopicReader(settings, topic, timeout)
    try:
        yield from reader.read(start)
    finally:
        reader.close()


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
