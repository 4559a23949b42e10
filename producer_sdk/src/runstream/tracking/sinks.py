"""Where encoded batches go: Kafka, the embedded local log, or nowhere. One interface.

A sink is driven by one thread (the batcher's): ``send`` hands over one encoded batch,
``service`` does periodic work (delivery reports, resending spilled batches), ``flush``
waits until everything handed over is acknowledged. ``unacknowledged`` may be read from
any thread.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from confluent_kafka import KafkaError, Producer

from runstream.contract.codec import Codec
from runstream.contract.events import decode_batch
from runstream.contract.exceptions import DecodeError
from runstream.core.delivery import DeliveryError, produce_records
from runstream.core.locallog import LocalLogError, LogWriter, is_locked, log_files, read_file
from runstream.core.logsource import EVENTS_DIR
from runstream.core.settings import Settings
from runstream.core.source import Record
from runstream.core.topics import Topics
from runstream.tracking.exceptions import SinkError
from runstream.tracking.journal import (
    RETRY_SECONDS,
    Entry,
    Journal,
    Orphan,
    destination_key,
    orphans,
    other_destination,
    writer_alive,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_IN_FLIGHT = 2_000_000
DEFAULT_MAX_IN_FLIGHT_BYTES = 64 << 20
ORPHAN_IN_FLIGHT = 200  # batches of an adopted journal file handed to the producer at once
RESEND_PER_SERVICE = 50  # batches resent per service call: the batcher's lock is let go often
_librdkafka_logger = logging.getLogger("runstream.tracking.librdkafka")
_KAFKA_DEFAULTS: dict[str, Any] = {"linger.ms": 5, "batch.size": 1_000_000}
_KAFKA_FORCED: dict[str, Any] = {"acks": "all", "enable.idempotence": True}


class Sink(Protocol):
    """The destination of encoded batches (see the module docstring for the threading)."""

    def open(self, producer_id: str) -> None:
        """Start writing as producer ``producer_id`` (called once per process)."""
        ...

    def send(self, run_id: str, value: bytes, events: int) -> None:
        """Hand over one encoded batch of ``events`` events of ``run_id``."""
        ...

    def service(self) -> None:
        """Do pending background work without blocking."""
        ...

    def unacknowledged(self) -> int:
        """Events handed over and not yet acknowledged by the destination."""
        ...

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for every handed-over event; return how many are not
        acknowledged."""
        ...

    def close(self, timeout: float) -> int:
        """Flush, then release resources; return how many events are not acknowledged."""
        ...

    def failure(self) -> str:
        """Why events are at risk, naming the folder and their count; "" when none are."""
        ...


class NoOpSink:
    """Accepts everything and sends nothing (``noop://``, ``RUNSTREAM_NO_OP=1``)."""

    def open(self, producer_id: str) -> None:
        """Nothing to open."""

    def send(self, run_id: str, value: bytes, events: int) -> None:
        """Discard the batch."""

    def service(self) -> None:
        """Nothing to do."""

    def unacknowledged(self) -> int:
        """Always 0."""
        return 0

    def flush(self, timeout: float) -> int:
        """Always 0."""
        return 0

    def close(self, timeout: float) -> int:
        """Always 0."""
        return 0

    def failure(self) -> str:
        """Always ""."""
        return ""


class LocalLogSink:
    """Appends batches to ``<folder>/events/<producer id>.avro`` (the embedded mode); the
    local log is the journal: each batch is written (flushed to the OS, no fsync) as soon as
    it is encoded, as often as the Kafka sink's journal.

    A batch is acknowledged once written; ``flush`` also fsyncs. A batch that cannot be
    written (folder unwritable, disk full) is counted as unsaved and reported by
    :meth:`failure`; the next write tries a new file (``<producer id>-<n>.avro``) at most once
    a second.

    Args:
        folder: the tracking folder of a ``file://`` URI.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder / EVENTS_DIR
        self._writer: LogWriter | None = None
        self._pid = -1
        self._producer_id = "unknown"
        self._files = 0
        self._unsaved = 0
        self._error = ""
        self._failed_at = float("-inf")

    def open(self, producer_id: str) -> None:
        """Create this process's log file (a failure is reported by :meth:`failure` once a
        batch could not be written)."""
        self._pid = os.getpid()
        self._producer_id = producer_id
        self._files = 0
        self._unsaved = 0
        self._writer = None
        self._new_writer()

    def _new_writer(self) -> LogWriter | None:
        if time.monotonic() - self._failed_at < RETRY_SECONDS:
            return None
        self._files += 1
        suffix = "" if self._files == 1 else f"-{self._files}"
        try:
            self._writer = LogWriter(self.folder / f"{self._producer_id}{suffix}.avro")
        except LocalLogError as error:
            self._fail(error)
        return self._writer

    def _fail(self, error: LocalLogError) -> None:
        if str(error) != self._error:
            logger.error("runstream local log: %s", error)
        self._error = str(error)
        self._failed_at = time.monotonic()

    def send(self, run_id: str, value: bytes, events: int) -> None:
        """Append the batch as one block (or count it as unsaved when it cannot be).

        Raises:
            SinkError: the sink is not open in this process.
        """
        if self._pid != os.getpid():
            raise SinkError(f"local log sink under {self.folder} is not open in this process")
        writer = self._writer or self._new_writer()
        if writer is None:
            self._unsaved += events
            return
        try:
            writer.append([(run_id, value)])
        except LocalLogError as error:
            self._unsaved += events
            self._fail(error)
            self._writer = None
            with contextlib.suppress(OSError):  # closed all the same; readers skip a torn tail
                writer.close(sync=False)

    def service(self) -> None:
        """Nothing to do: writes are synchronous."""

    def unacknowledged(self) -> int:
        """Events that could not be written (a batch is written before ``send`` returns)."""
        return self._unsaved

    def failure(self) -> str:
        """How many events could not be written to the local log folder, and why."""
        if not self._unsaved:
            return ""
        return (
            f"{self._unsaved} events are at risk: the local log folder {self.folder} cannot be "
            f"written ({self._error}); they are not in the log, make the folder writable or "
            "free space"
        )

    def flush(self, timeout: float) -> int:
        """fsync the file; return 0.

        Raises:
            SinkError: events could not be written (see :meth:`failure`), or the fsync failed.
        """
        failure = self.failure()
        if failure:
            raise SinkError(failure)
        if self._writer is not None and self._pid == os.getpid():
            try:
                self._writer.sync()
            except LocalLogError as error:
                raise SinkError(str(error)) from error
        return 0

    def close(self, timeout: float) -> int:
        """Close the file; return how many events could not be written."""
        if self._writer is not None and self._pid == os.getpid():
            try:
                self._writer.close()
            except OSError as error:
                logger.error("closing local log file %s: %s", self._writer.path, error)
        self._writer = None
        return self._unsaved


class KafkaSink:
    """Produces batches to the events topic, keyed by run id, with acks=all and idempotence,
    through the local journal (:mod:`runstream.tracking.journal`).

    Each batch is appended to a journal file under ``spill_dir`` before it is produced
    (``journal=False``: only the batches Kafka does not take are written there, the old
    spill). A batch the broker does not acknowledge, or one past ``max_in_flight`` events
    waiting in the producer, stays in its journal file and is produced again from there (same
    bytes, so same event identities) once the broker acknowledges again. Journal files of a
    process that died are adopted and resent by the next process logging to the same broker
    and topic (or by :func:`resend_spill_files`).

    The confluent-kafka producer is created lazily in the process that uses it (and again
    after a fork).

    Args:
        settings: resolved settings of a ``kafka://`` tracking URI.
        spill_dir: the journal folder.
        max_in_flight: events handed to the producer and not yet acknowledged, at most.
        journal: write every batch to the journal before producing it (default True).
        max_in_flight_bytes: bytes of batches handed to the producer and not yet
            acknowledged, at most (the memory budget of buffered events; past it batches
            wait in the journal).
    """

    def __init__(
        self,
        settings: Settings,
        spill_dir: Path,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        journal: bool = True,
        max_in_flight_bytes: int = DEFAULT_MAX_IN_FLIGHT_BYTES,
    ) -> None:
        self.topic = Topics(settings.topic_prefix).events
        self.spill_dir = spill_dir
        self.journal_all = journal
        self.destination = destination_key(settings.tracking_uri.bootstrap_servers, self.topic)
        self._config = {**_KAFKA_DEFAULTS, **settings.kafka_config(), **_KAFKA_FORCED}
        self._max_in_flight = max_in_flight
        self._max_bytes = max_in_flight_bytes
        self._producer_id = "unknown"
        self._pid = -1
        self._producer: Any = None
        self._parents: list[Any] = []  # a parent's producers: never destroyed in a child
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._in_flight = 0  # events handed to the producer, not yet reported
        self._in_flight_bytes = 0  # and their bytes
        self._orphan_bytes = 0  # bytes of adopted journal batches handed to the producer
        self._unsent = 0  # events in journal files waiting for a resend
        self._unjournaled = 0  # of _in_flight: events no journal file holds
        self._unsaved = 0  # neither acknowledged, in flight nor journaled: lost at exit
        self._unsaved_error = ""
        self._journal = Journal(self.spill_dir, f"{self.destination}-{self._producer_id}")
        self._resend: Iterator[tuple[Entry, str, bytes]] | None = None
        self._orphans: list[Orphan] | None = None  # adopted at the first service
        self._orphan_records: Iterator[Record] | None = None
        self._orphan_next: Record | None = None
        self._orphan_in_flight = 0
        self._healthy = True
        self._last_error = ""

    def open(self, producer_id: str) -> None:
        """Remember the producer id (names journal files); the Kafka producer comes lazily."""
        self._producer_id = producer_id
        self._journal = Journal(self.spill_dir, f"{self.destination}-{producer_id}")

    def _client(self) -> Any:
        if self._pid != os.getpid():
            if self._producer is not None:
                self._parents.append(self._producer)
            self._producer = None
            self._reset_counters()
        if self._producer is None:
            self._producer = Producer(
                {**self._config, "error_cb": self._on_error, "logger": _librdkafka_logger}
            )
            self._pid = os.getpid()
        return self._producer

    def _on_error(self, error: KafkaError) -> None:
        text = error.str()
        repeated = text == self._last_error
        self._last_error = text
        logger.log(logging.DEBUG if repeated else logging.WARNING, "kafka producer: %s", text)

    def send(self, run_id: str, value: bytes, events: int) -> None:
        """Journal the batch, then produce it (unless too much is unacknowledged: it then
        waits in the journal). Never raises: a batch neither journaled nor produced is
        counted as unsaved and reported by :meth:`failure`."""
        self._client()
        entry = self._journal.append(run_id, value, events) if self.journal_all else None
        over = self._in_flight > 0 and (
            self._in_flight + events > self._max_in_flight
            or self._in_flight_bytes + self._orphan_bytes + len(value) > self._max_bytes
        )
        waits = over and (entry is not None or not self.journal_all)
        if waits or not self._produce(run_id, value, events, entry):
            self._keep(entry, run_id, value, events)

    def _keep(self, entry: Entry | None, run_id: str, value: bytes, events: int) -> None:
        """Leave a batch Kafka does not have in the journal for a resend (writing it there
        first if it is not yet); if the journal cannot take it, count it as unsaved."""
        if entry is None:
            entry = self._journal.append(run_id, value, events)
        if entry is None:
            self._unsaved += events
            self._unsaved_error = self._journal.error
            return
        self._journal.unsent(entry)
        self._unsent += events

    def _produce(self, run_id: str, value: bytes, events: int, entry: Entry | None) -> bool:
        producer = self._client()
        try:
            producer.produce(
                self.topic,
                value,
                run_id.encode("utf-8"),
                on_delivery=functools.partial(self._delivered, events, entry),
            )
        except BufferError:
            producer.poll(0)
            return False
        self._in_flight += events
        self._in_flight_bytes += len(value)
        if entry is None:
            self._unjournaled += events
        producer.poll(0)
        return True

    def _delivered(self, events: int, entry: Entry | None, error: Any, message: Any) -> None:
        self._in_flight -= events
        self._in_flight_bytes -= len(message.value() or b"")
        if entry is None:
            self._unjournaled -= events
        if error is None:
            self._healthy = True
            if entry is not None:
                self._journal.acknowledged(entry)
            return
        self._healthy = False
        self._last_error = error.str()
        logger.warning(
            "delivery to %s failed (%s): %d events of run %s wait in the journal",
            self.topic,
            error.str(),
            events,
            message.key(),
        )
        self._keep(entry, message.key().decode("utf-8"), message.value(), events)

    def service(self) -> None:
        """Serve delivery reports; resend journaled batches Kafka does not have yet, then
        the journal files of processes that died, while the broker acknowledges."""
        producer = self._client()
        producer.poll(0)
        if not (self._healthy or self._in_flight == 0):
            return
        try:
            self._resend_unsent()
        except LocalLogError as error:
            logger.error("runstream journal: %s", error)
            self._resend = None
            return
        if self._unsent == 0:
            self._resend_orphans()

    def _resend_unsent(self) -> None:
        for _ in range(RESEND_PER_SERVICE):
            if not (
                self._unsent
                and self._in_flight < self._max_in_flight // 2
                and self._in_flight_bytes < self._max_bytes // 2
            ):
                return
            if self._resend is None:
                self._resend = self._journal.resend()
            item = next(self._resend, None)
            if item is None:
                self._resend = None
                return
            entry, run_id, value = item
            self._unsent -= entry.events
            if not self._produce(run_id, value, entry.events, entry):
                self._journal.unsent(entry)
                self._unsent += entry.events
                return

    def _resend_orphans(self) -> None:
        if self._orphans is None:
            self._orphans = orphans(self.spill_dir, self.destination)
            for orphan in self._orphans:
                logger.warning("resending journal file %s of a process that ended", orphan.path)
        producer = self._client()
        for _ in range(RESEND_PER_SERVICE):
            if not self._orphans:
                return
            orphan = self._orphans[0]
            if (
                orphan.unacknowledged >= ORPHAN_IN_FLIGHT
                or self._orphan_bytes >= self._max_bytes // 4
            ):
                return
            if self._orphan_next is None:
                if self._orphan_records is None:
                    self._orphan_records = read_file(orphan.path)
                self._orphan_next = next(self._orphan_records, None)
            record = self._orphan_next
            if record is None:  # every record handed over
                self._orphan_records = None
                orphan.read = True
                self._orphans.pop(0)
                self._settle_orphan(orphan)
                continue
            try:
                producer.produce(
                    self.topic,
                    record.value,
                    record.key,
                    on_delivery=functools.partial(self._orphan_delivered, orphan),
                )
            except BufferError:
                producer.poll(0)
                return
            self._orphan_next = None
            orphan.unacknowledged += 1
            self._orphan_in_flight += 1
            self._orphan_bytes += len(record.value or b"")

    def _orphan_delivered(self, orphan: Orphan, error: Any, message: Any) -> None:
        orphan.unacknowledged -= 1
        self._orphan_in_flight -= 1
        self._orphan_bytes -= len(message.value() or b"")
        if error is not None:
            orphan.failed = True
        self._settle_orphan(orphan)

    def _settle_orphan(self, orphan: Orphan) -> None:
        if orphan.read and orphan.unacknowledged == 0:
            orphan.release(delete=not orphan.failed)
            logger.info(
                "journal file %s %s", orphan.path, "kept" if orphan.failed else "fully resent"
            )

    def _orphans_busy(self) -> bool:
        return self._orphans is None or bool(self._orphans) or self._orphan_in_flight > 0

    def buffered_bytes(self) -> int:
        """Bytes of batches handed to the producer and not yet reported (this process's and
        adopted ones): what the events waiting for Kafka hold in memory."""
        return self._in_flight_bytes + self._orphan_bytes

    def unacknowledged(self) -> int:
        """Events of this process not acknowledged, each counted once: in flight, waiting in
        the journal, or neither (the journal folder failed)."""
        return self._in_flight + self._unsent + self._unsaved

    def failure(self) -> str:
        """Why events are at risk (not acknowledged and not journaled), naming the journal
        folder and their count; "" when none are."""
        # without the journal (journal=False) a batch in flight is in no file by design
        at_risk = self._unsaved + (self._unjournaled if self.journal_all else 0)
        if not at_risk:
            return ""
        error = self._journal.error or self._unsaved_error
        return (
            f"{at_risk} events are at risk: Kafka has not acknowledged them and the journal "
            f"folder {self.spill_dir} cannot be written ({error}); make the folder writable "
            "or free space (RUNSTREAM_SPILL_DIR) before the process exits"
        )

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for acknowledgements (resending journaled batches as the
        broker answers, and the journal files adopted from processes that ended); return how
        many events of this process are still unacknowledged.

        Raises:
            SinkError: events are at risk (see :meth:`failure`); raised by every flush
                until they are acknowledged.
        """
        left = self._wait(timeout)
        failure = self.failure()
        if failure:
            raise SinkError(failure)
        return left

    def _wait(self, timeout: float) -> int:
        """Serve until this process's events and the adopted journal files are acknowledged
        or ``timeout`` s pass; this process's events still unacknowledged."""
        deadline = time.monotonic() + timeout
        producer = self._client()
        while True:
            self.service()
            left = deadline - time.monotonic()
            if self.unacknowledged() == 0:
                self._journal.retire_acknowledged()
                if not self._orphans_busy():
                    break
            if left <= 0:
                break
            remaining = producer.flush(min(left, 0.2))
            if remaining == 0 and self._in_flight > 0:
                producer.poll(0)
        return self.unacknowledged()

    def close(self, timeout: float) -> int:
        """Flush up to ``timeout`` s, then take back what is still in flight (it stays in the
        journal), close the journal (files of unacknowledged batches are kept for the next
        process or ``runstream sync``) and return how many events are not acknowledged."""
        mine = self._pid == os.getpid()
        if self._producer is not None or self._unsent:
            self._wait(timeout)
        if self._in_flight and self._producer is not None and mine:
            # Still unacknowledged: take them back from the producer (each delivery report
            # then leaves its batch in the journal), so they outlive this process.
            self._producer.purge(in_queue=True, in_flight=True, blocking=True)
            self._producer.flush(0)
        if mine or self._producer is None:
            self._journal.close()
            for orphan in self._orphans or []:
                orphan.release(delete=False)
        left = self.unacknowledged()
        if left:
            logger.error(
                "%d events not acknowledged by %s at close; they stay in the journal %s for "
                "the next process or `runstream sync` (last error: %s)",
                left,
                self.topic,
                self.spill_dir,
                self._last_error or "none",
            )
        return left

    @property
    def last_error(self) -> str:
        """The last error the producer reported, or an empty string."""
        return self._last_error


def _event_count(codec: Codec, value: bytes | None, path: Path) -> int:
    try:
        return len(decode_batch(codec, value))
    except DecodeError as error:
        raise SinkError(f"spill file {path} holds an undecodable batch: {error}") from error


def resend_spill_files(
    settings: Settings, spill_dir: Path, timeout: float = 60.0, every_destination: bool = False
) -> int:
    """Produce every batch of every journal (or spill) file in ``spill_dir`` that no live
    process holds, file by file, deleting each file once all its batches are acknowledged.
    The batches keep their bytes, so their event identities (producer id, sequence) are
    unchanged and readers deduplicate any batch that had reached Kafka before. Journal files
    of another broker or topic are left alone unless ``every_destination``.

    Returns the number of events resent and acknowledged.

    Raises:
        SinkError: a file's batches were not all acknowledged within ``timeout`` (that file
            and the ones after it are kept), or a spill file cannot be read.
    """
    producer = Producer({**_KAFKA_DEFAULTS, **settings.kafka_config(), **_KAFKA_FORCED})
    topic = Topics(settings.topic_prefix).events
    codec = Codec()
    sent = 0
    destination = destination_key(settings.tracking_uri.bootstrap_servers, topic)
    for path in log_files(spill_dir):
        if is_locked(path) or writer_alive(path, this_process=False):
            continue
        if not every_destination and other_destination(path, destination):
            continue
        records = list(read_file(path))
        events = sum(_event_count(codec, record.value, path) for record in records)
        try:
            produce_records(producer, topic, records, timeout)
        except DeliveryError as error:
            raise SinkError(f"resending spill file {path}: {error}; the file is kept") from error
        path.unlink(missing_ok=True)
        sent += events
    return sent
