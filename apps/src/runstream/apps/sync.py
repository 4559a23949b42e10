"""Sending a local log to Kafka (offline -> online).

A record's bytes are sent unchanged, so every event keeps its identity (producer id,
sequence): sending the same log twice adds messages at new offsets, which every reader
deduplicates, so the run state does not change. :func:`sync` also remembers, per target,
how far it sent each file, so a second call sends only what is new (``resend_all`` sends
everything again).
"""

from __future__ import annotations

import hashlib
import logging

from runstream.core.delivery import delivery_producer, produce_records
from runstream.core.logsource import LocalLogSource, events_folder
from runstream.core.settings import Settings
from runstream.core.topics import Topics

logger = logging.getLogger(__name__)


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
