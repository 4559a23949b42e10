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

Liveness: the table holds the reducer's state; what is published is the state as readers see
it now (:func:`runstream.contract.liveness.shown`), so a run past its lease goes out with
status CRASHED. A timer publishes runs whose lease passes with no event: it watches each
open run that sends heartbeats (from the folds, and by a scan of each partition's table once
it is assigned and recovered, again every 5 minutes), and a later event publishes the run
RUNNING again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
from faust.streams import _current_event
from mode.utils.futures import notify

from runstream.contract import liveness
from runstream.contract.codec import Codec
from runstream.contract.deadletter import DeadLetter, read_message
from runstream.contract.events import EventBatch
from runstream.contract.state import RunState, apply_batch, decode_state, encode_state
from runstream.core.errors import ConfigError
from runstream.core.settings import Settings
from runstream.core.topics import DEFAULT_PARTITIONS, Topics
from runstream.processor.metrics import ProcessorMetrics

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


def create_app(
    settings: Settings,
    options: ProcessorOptions | None = None,
    metrics: ProcessorMetrics | None = None,
) -> faust.App:
    """A new faust app that maintains ``runstream.runs`` from ``runstream.events``, counting
    its work in ``metrics`` when given.

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
        # Each chunk sends a state per changed run (and as many changelog records): let the
        # producer gather them into a few requests instead of one write per message.
        producer_linger=0.05,
        stream_buffer_maxsize=max(4096, options.chunk * 2),
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=options.session_timeout,
        broker_heartbeat_interval=max(1.0, options.session_timeout / 4),
        broker_credentials=broker_credentials(settings.kafka),
    )
    _flush_completely(app.producer)
    _ack_only_folded(app)
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
    lease_us = liveness.lease_us(settings.run_lease)
    folder = _Folder(Codec(), topics.events, table, runs_topic, dead_topic, lease_us, metrics)
    if metrics is not None:
        metrics.attach(app, settings, topics.events, app_id)

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

    async def expire() -> None:
        if app.in_recovery:
            return
        assigned = {
            tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topics.events
        }
        try:
            await folder.expire(assigned)
        except Exception:  # a view of the table, retried at the next tick: never stop the worker
            logger.exception("the liveness check failed; it runs again in %s s", interval)

    interval = _check_interval(settings.run_lease)

    app.agent(events_topic, name=f"{app_id}.fold")(process)
    app.timer(interval, name=f"{app_id}.liveness")(expire)
    return app


RESCAN_SECONDS = 300.0
"""How often each assigned partition's table is scanned again for open runs."""
SCAN_STEP = 200
"""States decoded by a scan between two turns of the event loop."""


def _flush_completely(producer: Any) -> None:
    """Make ``producer``'s flush hand every buffered message to Kafka before it returns.

    The table's changelog writes wait in faust's producer buffer, and faust flushes that
    buffer before committing offsets (periodically and at a rebalance), but its flush returns
    as soon as 0.1 s pass without a message leaving the buffer: on a busy event loop (a
    chunk being folded, a loaded machine) or while a partition has no leader (a broker just
    died), offsets were committed with changelog writes of the events they cover still
    buffered. The next worker to restore the table (after a kill or a rebalance) then
    resumed after those events with a stale state, for good. Now the flush waits until the
    buffer is empty; the commit waits with it.
    """
    buffer = producer.buffer

    async def flush() -> None:
        while buffer.size:
            await buffer.flush_atmost(None)  # stops after 0.1 s without progress

    buffer.flush = flush


def _ack_only_folded(app: Any) -> None:
    """Make the consumer of ``app`` count an ack toward the next commit only for a message
    of the current generation read while the flow is on: one the worker folded.

    faust's stream acks the messages it skips without handing them to the agent (fetched
    before a rebalance and read while the flow is suspended or after the generation
    changed), "otherwise the lag would increase". Their offsets join the acked offsets the
    commit is computed from, and when they start at the committed position the next
    commit moves past messages no worker folded: the worker that gets the partition next
    resumes after them, and their events are missing from the run states for good. Seen
    in the scale test after a broker and a processor were killed: runs of two partitions
    lost their ``train`` tag (and ~900 steps, invisible in last/min/max), another run its
    first events, while ``replay`` of the same log was right. A dropped ack only means the
    message is read again by whoever holds its partition next (the reducer is idempotent),
    and it still counts as done for the rebalance's wait for in-flight messages.
    """
    consumer = app.consumer
    acknowledge = consumer.ack

    def ack(message: Any) -> bool:
        if message.generation_id == app.consumer_generation_id and app.flow_control.is_active():
            return bool(acknowledge(message))
        message.acked = True  # done for wait_empty; not counted toward a commit
        notify(consumer._waiting_for_ack)
        return False

    consumer.ack = ack


def _check_interval(lease: float) -> float:
    """Seconds between two liveness checks: a quarter of the lease, within 0.2 to 5."""
    return min(5.0, max(0.2, lease / 4))


def _now_us() -> int:
    return time.time_ns() // 1000


class _Folder:
    """Folds chunks of event-log messages into the table and publishes what changed."""

    def __init__(
        self,
        codec: Codec,
        source: str,
        table: Any,
        runs_topic: Any,
        dead_topic: Any,
        lease_us: int,
        metrics: ProcessorMetrics | None = None,
    ) -> None:
        self._codec = codec
        self._source = source
        self._table = table
        self._runs = runs_topic
        self._dead = dead_topic
        self._metrics = metrics
        self._lease_us = lease_us
        self._due: dict[bytes, tuple[int, int]] = {}  # run key -> (partition, CRASHED at µs)
        self._scanned: dict[int, float] = {}  # partition -> when its table was scanned
        self._crashed: dict[bytes, tuple[int, int | None]] = {}  # published CRASHED, as of
        # (partition, last_heard_us): a rescan does not publish it again

    async def fold(self, events: Sequence[Any]) -> None:
        """Fold one chunk: messages grouped by partition, each changed run written once."""
        started = time.perf_counter()
        by_partition: dict[int, list[Any]] = {}
        for event in events:
            by_partition.setdefault(event.message.partition, []).append(event)
        for partition_events in by_partition.values():
            await self._fold_partition(partition_events)
        if self._metrics is not None:
            self._metrics.messages.inc(len(events))
            self._metrics.fold_seconds.observe(time.perf_counter() - started)

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
                self._apply(changed, read, message.partition, message.offset)
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
        now = _now_us()
        for key, state in changed.items():
            data = encode_state(self._codec, state)
            self._table[key] = data
            await self._publish(key, state, partition, now, data)
        if self._metrics is not None:
            self._metrics.runs_published.inc(len(changed))

    async def _publish(
        self, key: bytes, state: RunState, partition: int, now: int, data: bytes
    ) -> None:
        """Publish ``state`` (encoded as ``data``) as readers see it at ``now``, and watch
        it for its lease when it is open and sends heartbeats."""
        shown = liveness.shown(state, now, self._lease_us)
        self._watch(key, partition, state, now)
        if shown is state:
            self._crashed.pop(key, None)
        else:
            self._crashed[key] = (partition, state.last_heard_us)
        if state.is_deleted:
            value = None
        else:
            value = data if shown is state else encode_state(self._codec, shown)
        await self._runs.send(key=key, value=value, partition=partition)

    def _watch(self, key: bytes, partition: int, state: RunState, now: int) -> None:
        """Watch ``state`` until its lease passes, if it is open, sends heartbeats and has
        not passed it yet; otherwise stop watching it."""
        due = None if state.is_deleted else liveness.crashed_at_us(state, self._lease_us)
        if due is None or due < now:
            self._due.pop(key, None)
        else:
            self._due[key] = (partition, due)

    async def expire(self, assigned: set[int]) -> int:
        """Publish CRASHED for every watched run whose lease has passed; return how many
        were published. Partitions of ``assigned`` not scanned in the last
        :data:`RESCAN_SECONDS` are scanned first (so runs that went silent while another
        worker or none held the partition are found after a rebalance or a restart)."""
        clock = time.monotonic()
        for partition in set(self._scanned) - assigned:
            del self._scanned[partition]
            self._due = {k: due for k, due in self._due.items() if due[0] != partition}
            self._crashed = {k: c for k, c in self._crashed.items() if c[0] != partition}
        for partition in sorted(assigned):
            if clock - self._scanned.get(partition, -RESCAN_SECONDS) >= RESCAN_SECONDS:
                await self._scan(partition)
                self._scanned[partition] = clock
        now = _now_us()
        published = 0
        for key, (partition, due) in sorted(self._due.items(), key=lambda item: item[1][1]):
            if due >= now:
                continue
            stored = _stored(self._table, partition, key)
            state = None if stored is None else decode_state(self._codec, stored)
            if (
                stored is None
                or state is None
                or state.is_deleted
                or self._crashed.get(key) == (partition, state.last_heard_us)
            ):
                self._due.pop(key, None)
            elif liveness.is_crashed(state, now, self._lease_us):
                await self._publish(key, state, partition, now, stored)
                logger.info("run %s: no event for the lease: published CRASHED", key.decode())
                published += 1
            else:  # heard from since (the fold re-watched it); keep it watched
                self._watch(key, partition, state, now)
        return published

    async def _scan(self, partition: int) -> None:
        """Watch every open run of ``partition``'s table that sends heartbeats (giving the
        event loop a turn every :data:`SCAN_STEP` states, so a large table never stalls
        the consumer)."""
        for count, (key, data) in enumerate(_stored_items(self._table, partition), 1):
            if count % SCAN_STEP == 0:
                await asyncio.sleep(0)
            if key not in self._due:
                state = decode_state(self._codec, data)
                due = liveness.crashed_at_us(state, self._lease_us)
                if due is not None and not state.is_deleted:
                    self._due[key] = (partition, due)

    def _apply(
        self, changed: dict[bytes, RunState], batch: EventBatch, partition: int, offset: int
    ) -> None:
        key = batch.run_id.encode()
        state = changed.get(key)
        if state is None:
            stored = self._table.get(key)
            if stored is None:
                # A new run; the same line for a known one is the trace of a lost state.
                logger.info(
                    "run %s: first state, from %s[%d]@%d (producer sequence %d)",
                    batch.run_id,
                    self._source,
                    partition,
                    offset,
                    batch.first_sequence,
                )
            state = None if stored is None else decode_state(self._codec, stored)
        changed[key] = apply_batch(state, batch)
        if self._metrics is not None:
            self._metrics.events.inc(len(batch))
            self._metrics.points.inc(len(batch.metrics))

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
        if self._metrics is not None:
            self._metrics.dead_letters.labels(letter.reason).inc()


# The table's RocksDB store, read by partition for the liveness timer (faust's Table API reads
# only through the current event's partition). The one place the store's internals are used.


def _stored_items(table: Any, partition: int) -> Iterator[tuple[bytes, bytes]]:
    store = table.data
    db = store._dbs.get(partition)
    if db is None:
        return iter(())
    items: Iterator[tuple[bytes, bytes]] = store._visible_items(db)
    return items


def _stored(table: Any, partition: int, key: bytes) -> bytes | None:
    db = table.data._dbs.get(partition)
    if db is None:
        return None
    value = db.get(key)
    return None if value is None else bytes(value)
