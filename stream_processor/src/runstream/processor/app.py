"""The faust app: consume the event log, keep run states in a table, publish changed states.

:func:`create_app` builds a new app from explicit settings (no module-level app), so tests
and several workers in one process each build their own. The one agent reads raw messages
in chunks (``take_events``), decodes and validates them (bad ones go to the dead-letter
topic with the reason in headers), folds each chunk's batches into the run states with the
reducer, writes each changed state once per chunk to the table (RocksDB via rocksdict, with
a changelog topic) and publishes it to the compacted runs topic (a tombstone when the run
is deleted), in the partition number of the run's events: the runs topic is co-partitioned
with the event log whatever partitioner the producers used, so the states of a run always
land in one partition and compaction keeps only the last.

Delivery is at least once: faust flushes the producer before committing offsets, so a
crash repeats some messages, and the reducer is idempotent, so the state is unchanged.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
from faust.streams import _current_event

from runstream.contract.codec import Codec
from runstream.contract.deadletter import DeadLetter, read_message
from runstream.contract.events import EventBatch
from runstream.contract.state import RunState, apply_batch, decode_state, encode_state
from runstream.core.errors import ConfigError
from runstream.core.settings import Settings
from runstream.core.topics import DEFAULT_PARTITIONS, Topics

logger = logging.getLogger(__name__)

TABLE = "runstate"


@dataclass(frozen=True)
class ProcessorOptions:
    """How a worker runs.

    Attributes:
        app_id: the faust app id: the consumer group, and the prefix of the changelog topic.
        datadir: where the RocksDB table files live (one folder per worker).
        partitions: partitions of the events topic (the table's changelog gets as many).
        chunk: at most this many messages are folded at once.
        within: seconds to wait for a chunk to fill before folding what has arrived.
        session_timeout: seconds after which the group gives a silent (killed) worker's
            partitions to the others.
        replication_factor: replicas of the topics faust creates (the table's changelog);
            the command line takes the cluster's (``cluster_replication``).
    """

    app_id: str | None = None  # None: Topics(prefix).processor_group
    datadir: Path = Path("runstream-processor-data")
    partitions: int = DEFAULT_PARTITIONS
    chunk: int = 2000
    within: float = 0.2
    session_timeout: float = 30.0
    replication_factor: int = 1


def broker_credentials(kafka: Mapping[str, Any]) -> Any:
    """faust's credentials for the librdkafka security properties of ``settings.kafka``
    (``security.protocol``, ``sasl.*``, ``ssl.*``), so the processor connects the way every
    other component does; None for PLAINTEXT.

    Raises:
        ConfigError: the protocol is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    """
    protocol = str(kafka.get("security.protocol", "PLAINTEXT")).upper()
    if protocol == "PLAINTEXT":
        return None
    if protocol not in ("SSL", "SASL_PLAINTEXT", "SASL_SSL"):
        raise ConfigError(
            f"security.protocol={protocol!r}: use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
        )
    context = None
    if protocol.endswith("SSL"):
        from aiokafka.helpers import create_ssl_context

        context = create_ssl_context(
            cafile=kafka.get("ssl.ca.location"),
            certfile=kafka.get("ssl.certificate.location"),
            keyfile=kafka.get("ssl.key.location"),
            password=kafka.get("ssl.key.password"),
        )
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=kafka.get("sasl.username"),
            password=kafka.get("sasl.password"),
            ssl_context=context,
            mechanism=str(kafka.get("sasl.mechanism", "PLAIN")).upper(),
        )
    return faust.SSLCredentials(context)


def create_app(settings: Settings, options: ProcessorOptions | None = None) -> faust.App:
    """A new faust app that maintains ``runstream.runs`` from ``runstream.events``.

    Raises:
        ConfigError: the tracking URI of ``settings`` is not kafka://.
    """
    options = options or ProcessorOptions()
    topics = Topics(settings.topic_prefix)
    app_id = options.app_id or topics.processor_group
    servers = ";".join(
        f"kafka://{server}" for server in settings.tracking_uri.bootstrap_servers.split(",")
    )
    app = faust.App(
        app_id,
        broker=servers,
        store="rocksdb://",
        datadir=str(options.datadir),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=options.partitions,
        topic_replication_factor=options.replication_factor,
        topic_allow_declare=True,
        topic_disable_leader=True,
        web_enabled=False,
        processing_guarantee="at_least_once",
        broker_commit_every=10_000,
        broker_commit_interval=1.0,
        stream_buffer_maxsize=max(4096, options.chunk * 2),
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=options.session_timeout,
        broker_heartbeat_interval=max(1.0, options.session_timeout / 4),
        broker_credentials=broker_credentials(settings.kafka),
    )
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    events_topic = app.topic(topics.events, partitions=options.partitions, **raw)
    runs_topic = app.topic(topics.runs, **raw)
    dead_topic = app.topic(topics.dead_letters, **raw)
    table = app.Table(
        TABLE,
        partitions=options.partitions,
        key_type=bytes,
        value_type=bytes,
    )
    folder = _Folder(Codec(), topics.events, table, runs_topic, dead_topic)

    async def process(stream: Any) -> None:  # a faust.Stream of raw bytes
        async for events in stream.take_events(options.chunk, within=options.within):
            try:
                await folder.fold(events)
            except Exception:
                # take_events acks a chunk even when its processing fails, and a crashing
                # worker commits its acks on the way out: exit at once, commit nothing, and
                # let the restarted worker fold the chunk again.
                logger.critical("folding a chunk failed; exiting without commit", exc_info=True)
                os._exit(70)

    app.agent(events_topic, name=f"{app_id}.fold")(process)
    return app


class _Folder:
    """Folds chunks of event-log messages into the table and publishes what changed."""

    def __init__(
        self, codec: Codec, source: str, table: Any, runs_topic: Any, dead_topic: Any
    ) -> None:
        self._codec = codec
        self._source = source
        self._table = table
        self._runs = runs_topic
        self._dead = dead_topic

    async def fold(self, events: Sequence[Any]) -> None:
        """Fold one chunk: messages grouped by partition, each changed run written once."""
        by_partition: dict[int, list[Any]] = {}
        for event in events:
            by_partition.setdefault(event.message.partition, []).append(event)
        for partition_events in by_partition.values():
            await self._fold_partition(partition_events)

    async def _fold_partition(self, events: list[Any]) -> None:
        # The table's RocksDB store picks the partition from faust's "current event"; make
        # it an event of this partition while the partition's runs are read and written.
        _current_event.set(weakref.ref(events[-1]))
        changed: dict[bytes, RunState] = {}
        for event in events:
            message = event.message
            read = read_message(
                self._codec,
                self._source,
                message.partition,
                message.offset,
                message.key,
                message.value,
            )
            if isinstance(read, DeadLetter):
                await self._send_dead_letter(read)
                continue
            try:
                self._apply(changed, read)
            except Exception as error:  # a validated batch applies; never stop on one that does not
                logger.exception(
                    "applying %s[%d]@%d failed", self._source, message.partition, message.offset
                )
                await self._send_dead_letter(
                    DeadLetter(
                        self._source,
                        message.partition,
                        message.offset,
                        message.key,
                        message.value,
                        "apply",
                        repr(error),
                    )
                )
        partition = events[0].message.partition
        for key, state in changed.items():
            data = encode_state(self._codec, state)
            self._table[key] = data
            await self._runs.send(
                key=key, value=None if state.is_deleted else data, partition=partition
            )

    def _apply(self, changed: dict[bytes, RunState], batch: EventBatch) -> None:
        key = batch.run_id.encode()
        state = changed.get(key)
        if state is None:
            stored = self._table.get(key)
            state = None if stored is None else decode_state(self._codec, stored)
        changed[key] = apply_batch(state, batch)

    async def _send_dead_letter(self, letter: DeadLetter) -> None:
        logger.warning(
            "dead letter from %s[%d]@%d: %s: %s",
            letter.topic,
            letter.partition,
            letter.offset,
            letter.reason,
            letter.message,
        )
        await self._dead.send(key=letter.key, value=letter.value, headers=letter.headers())
