"""Producing records with delivery checks (acks=all, idempotent): the one place that does.

A record's bytes are sent unchanged, so every event keeps its identity (producer id,
sequence); readers deduplicate on it, so sending a record twice is harmless.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from confluent_kafka import Producer

from runstream.core.errors import RunstreamError
from runstream.core.settings import Settings
from runstream.core.source import Record

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
