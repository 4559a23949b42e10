"""Sending a local log to Kafka (offline → online), and producing records with delivery
checks: the one place that does.

A record's bytes are sent unchanged, so every event keeps its identity (producer id,
sequence): sending the same log twice adds messages at new offsets, which every reader
deduplicates, so the run state does not change. :func:`sync` also remembers, per target,
how far it sent each file, so a second call sends only what is new (``resend_all`` sends
everything again).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Producer

from runstream.embedded import LocalLogSource, events_folder
from runstream.errors import RunstreamError
from runstream.settings import Settings
from runstream.source import Record
from schemas.topics import Topics

logger = logging.getLogger(__name__)

DELIVERY = {"acks": "all", "enable.idempotence": True, "linger.ms": 20}


class DeliveryError(RunstreamError):
    """Kafka did not acknowledge every message; the message says how many and why."""


def delivery_producer(settings: Settings) -> Producer:
    """A producer whose acknowledgements mean durable (acks=all, idempotent)."""
    return Producer(settings.kafka_config(**DELIVERY))


def produce_records(
    producer: Producer, topic: str, records: Iterable[Record], timeout: float = 60.0
) -> int:
    """Produce every record (key and value unchanged) to ``topic`` and wait until each is
    acknowledged. Returns how many were produced.

    Raises:
        DeliveryError: some were not acknowledged within ``timeout`` s, or failed.
    """
    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(error.str())

    count = 0
    for record in records:
        while True:
            try:
                producer.produce(topic, record.value, record.key, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        count += 1
    remaining = producer.flush(timeout)
    if remaining or failures:
        raise DeliveryError(
            f"{remaining} of {count} messages to {topic} unacknowledged after {timeout:g} s; "
            f"{len(failures)} failed{': ' + failures[0] if failures else ''}"
        )
    return count


def sync(source: Settings, target: Settings, *, resend_all: bool = False) -> int:
    """Send the local log of ``source`` (file://) to the events topic of ``target``
    (kafka://); the number of messages sent.

    Raises:
        ConfigError: ``source`` is not file:// or ``target`` not kafka://.
        DeliveryError: Kafka did not acknowledge every message (nothing is marked sent).
        LocalLogError: a log file cannot be read.
    """
    destination = f"{target.tracking_uri.bootstrap_servers}/{target.topic_prefix}"
    group = "sync-" + hashlib.sha256(destination.encode()).hexdigest()[:16]
    log = LocalLogSource(events_folder(source), group)
    if resend_all:
        log.rewind()
    producer = delivery_producer(target)
    topic = Topics(target.topic_prefix).events
    sent = 0
    while records := log.poll(10_000, 0):
        sent += produce_records(producer, topic, records)
        positions: dict[int, int] = {}
        for record in records:
            positions[record.partition] = record.offset + 1
        log.commit(positions)
    logger.info("sent %d messages from %s to %s", sent, events_folder(source), destination)
    return sent
