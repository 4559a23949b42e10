"""Where encoded batches go: Kafka, the embedded local log, or nowhere. One interface.

A sink is driven by one thread (the batcher's): ``send`` hands over one encoded batch,
``service`` does periodic work (delivery reports, resending spilled batches), ``flush``
waits until everything handed over is acknowledged. ``unacknowledged`` may be read from
any thread.
"""

from __future__ import annotations

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
from runstream.core.topics import Topics
from runstream.tracking.exceptions import SinkError

logger = logging.getLogger(__name__)

DEFAULT_MAX_IN_FLIGHT = 2_000_000
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


class LocalLogSink:
    """Appends batches to ``<folder>/events/<producer id>.avro`` (the embedded mode).

    A batch is acknowledged once written and flushed to the OS; ``flush`` also fsyncs.

    Args:
        folder: the tracking folder of a ``file://`` URI.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder / EVENTS_DIR
        self._writer: LogWriter | None = None
        self._pid = -1

    def open(self, producer_id: str) -> None:
        """Create this process's log file.

        Raises:
            SinkError: the file cannot be created.
        """
        self._pid = os.getpid()
        try:
            self._writer = LogWriter(self.folder / f"{producer_id}.avro")
        except LocalLogError as error:
            raise SinkError(str(error)) from error

    def send(self, run_id: str, value: bytes, events: int) -> None:
        """Append the batch as one block.

        Raises:
            SinkError: the sink is not open in this process, or the write failed.
        """
        if self._writer is None or self._pid != os.getpid():
            raise SinkError(f"local log sink under {self.folder} is not open in this process")
        try:
            self._writer.append([(run_id, value)])
        except LocalLogError as error:
            raise SinkError(str(error)) from error

    def service(self) -> None:
        """Nothing to do: writes are synchronous."""

    def unacknowledged(self) -> int:
        """Always 0: a batch is written before ``send`` returns."""
        return 0

    def flush(self, timeout: float) -> int:
        """fsync the file; return 0.

        Raises:
            SinkError: the fsync failed.
        """
        if self._writer is not None and self._pid == os.getpid():
            try:
                self._writer.sync()
            except LocalLogError as error:
                raise SinkError(str(error)) from error
        return 0

    def close(self, timeout: float) -> int:
        """Close the file; return 0."""
        if self._writer is not None and self._pid == os.getpid():
            self._writer.close()
        self._writer = None
        return 0


class KafkaSink:
    """Produces batches to the events topic, keyed by run id, with acks=all and idempotence.

    The confluent-kafka producer is created lazily in the process that uses it (and again
    after a fork). While the broker does not acknowledge, up to ``max_in_flight`` events wait
    in the producer; past that, or when delivery fails, batches are spilled to a local log
    file under ``spill_dir`` and resent (same bytes, so same event identities) once the
    broker acknowledges again.

    Args:
        settings: resolved settings of a ``kafka://`` tracking URI.
        spill_dir: folder of spill files.
        max_in_flight: events handed to the producer and not yet acknowledged, at most.
    """

    def __init__(
        self, settings: Settings, spill_dir: Path, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    ) -> None:
        self.topic = Topics(settings.topic_prefix).events
        self.spill_dir = spill_dir
        self._config = {**_KAFKA_DEFAULTS, **settings.kafka_config(), **_KAFKA_FORCED}
        self._max_in_flight = max_in_flight
        self._codec = Codec()
        self._producer_id = "unknown"
        self._pid = -1
        self._producer: Any = None
        self._orphans: list[Any] = []  # a parent's producers: never destroyed in a child
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._in_flight = 0
        self._resent_in_flight = 0  # of _in_flight: batches also counted in _spilled
        self._spilled = 0
        self._unsaved = 0  # neither acknowledged nor spilled: the spill folder failed
        self._unsaved_error = ""
        self._spill: LogWriter | None = None
        self._spill_count = 0
        self._resend: Iterator[tuple[Path, str, bytes, int]] | None = None
        self._outstanding: dict[Path, int] = {}
        self._fully_handed: set[Path] = set()
        self._healthy = True
        self._last_error = ""

    def open(self, producer_id: str) -> None:
        """Remember the producer id (names spill files); the Kafka producer comes lazily."""
        self._producer_id = producer_id

    def _client(self) -> Any:
        if self._pid != os.getpid():
            if self._producer is not None:
                self._orphans.append(self._producer)
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
        """Produce the batch, or spill it when too much is unacknowledged.

        Raises:
            SinkError: the batch could neither be produced nor spilled.
        """
        if self._in_flight + events > self._max_in_flight and self._in_flight > 0:
            self._spill_new(run_id, value, events)
            return
        if not self._produce(run_id, value, events, None):
            self._spill_new(run_id, value, events)

    def _spill_new(self, run_id: str, value: bytes, events: int) -> None:
        """Spill a batch that is in no spill file yet; if the folder cannot take it, count
        its events as unsaved (every later flush raises, close returns them)."""
        try:
            self._write_spill(run_id, value, events)
        except SinkError as error:
            self._unsaved += events
            self._unsaved_error = str(error)
            logger.error("%s", error)
            return
        self._spilled += events

    def _produce(self, run_id: str, value: bytes, events: int, origin: Path | None) -> bool:
        producer = self._client()
        try:
            producer.produce(
                self.topic,
                value,
                run_id.encode("utf-8"),
                on_delivery=functools.partial(self._delivered, events, origin),
            )
        except BufferError:
            producer.poll(0)
            return False
        self._in_flight += events
        if origin is not None:
            self._resent_in_flight += events
        producer.poll(0)
        return True

    def _delivered(self, events: int, origin: Path | None, error: Any, message: Any) -> None:
        self._in_flight -= events
        if origin is not None:
            self._resent_in_flight -= events
        if error is None:
            self._healthy = True
            if origin is not None:
                self._spilled -= events
                self._settle(origin, events)
            return
        self._healthy = False
        self._last_error = error.str()
        logger.warning(
            "delivery to %s failed (%s): spilling %d events of run %s",
            self.topic,
            error.str(),
            events,
            message.key(),
        )
        if origin is None:
            self._spill_new(message.key().decode("utf-8"), message.value(), events)
            return
        try:
            self._write_spill(message.key().decode("utf-8"), message.value(), events)
        except SinkError as error:  # still in its own file: keep that file for a resend
            logger.error("%s; the batch stays in %s", error, origin)
            return
        self._settle(origin, events)

    def _settle(self, origin: Path, events: int) -> None:
        self._outstanding[origin] -= events
        if self._outstanding[origin] == 0 and origin in self._fully_handed:
            del self._outstanding[origin]
            self._fully_handed.discard(origin)
            origin.unlink(missing_ok=True)
            logger.info("spill file %s fully resent", origin)

    def _write_spill(self, run_id: str, value: bytes, events: int) -> None:
        try:
            if self._spill is None:
                self._spill_count += 1
                name = f"{self._producer_id}-{os.getpid()}-{self._spill_count}.avro"
                self._spill = LogWriter(self.spill_dir / name)
                logger.warning("kafka does not acknowledge: spilling to %s", self._spill.path)
            self._spill.append([(run_id, value)])
        except LocalLogError as error:
            raise SinkError(
                f"cannot spill {events} events of run {run_id} to {self.spill_dir}: {error}"
            ) from error

    def service(self) -> None:
        """Serve delivery reports; resend spilled batches when the broker acknowledges."""
        producer = self._client()
        producer.poll(0)
        if self._spilled == 0 and self._resend is None:
            return
        if not (self._healthy or self._in_flight == 0):
            return
        while self._in_flight < self._max_in_flight // 2:
            if self._resend is None:
                self._resend = self._next_resend()
                if self._resend is None:
                    return
            entry = next(self._resend, None)
            if entry is None:
                self._resend = None
                continue
            path, run_id, value, events = entry
            self._outstanding[path] = self._outstanding.get(path, 0) + events
            if not self._produce(run_id, value, events, path):
                try:
                    self._write_spill(run_id, value, events)
                except SinkError as error:  # still in its own file: keep that file
                    logger.error("%s; the batch stays in %s", error, path)
                    return
                self._outstanding[path] -= events
                return

    def _next_resend(self) -> Iterator[tuple[Path, str, bytes, int]] | None:
        if self._spill is not None:
            self._spill.close()
            self._spill = None
        for path in log_files(self.spill_dir):
            if path.name.startswith(f"{self._producer_id}-") and path not in self._outstanding:
                self._outstanding[path] = 0
                return self._spilled_records(path)
        return None

    def _spilled_records(self, path: Path) -> Iterator[tuple[Path, str, bytes, int]]:
        for record in read_file(path):
            run_id = (record.key or b"").decode("utf-8")
            events = _event_count(self._codec, record.value, path)  # raises on a null value
            yield path, run_id, record.value or b"", events
        self._fully_handed.add(path)
        self._settle(path, 0)

    def unacknowledged(self) -> int:
        """Events not acknowledged, each counted once: produced and in flight, waiting in
        spill files (a resent one included), or neither (the spill folder failed)."""
        return self._in_flight - self._resent_in_flight + self._spilled + self._unsaved

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for acknowledgements (resending spilled batches as the
        broker answers); return how many events are still unacknowledged.

        Raises:
            SinkError: batches that Kafka did not take could not be spilled either; it names
                the spill folder and the events at risk (raised by every flush until then).
        """
        left = self._wait(timeout)
        if self._unsaved:
            raise SinkError(
                f"{self._unsaved} events are at risk: Kafka did not acknowledge them and the "
                f"spill folder {self.spill_dir} cannot be written ({self._unsaved_error}); "
                "make the folder writable (RUNSTREAM_SPILL_DIR) before the process exits"
            )
        return left

    def _wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        producer = self._client()
        while True:
            self.service()
            left = deadline - time.monotonic()
            if self.unacknowledged() == 0 or left <= 0:
                break
            remaining = producer.flush(min(left, 0.2))
            if remaining == 0 and self._in_flight > 0:
                producer.poll(0)
        return self.unacknowledged()

    def close(self, timeout: float) -> int:
        """Flush up to ``timeout`` s; spill what is still unacknowledged, close the spill file
        (kept for a resend by a later run or ``runstream sync``) and return how many events
        are not acknowledged."""
        left = self._wait(timeout) if self._producer is not None or self._spilled else 0
        if self._in_flight and self._producer is not None and self._pid == os.getpid():
            # Still unacknowledged: take them back from the producer (each delivery report
            # then spills its batch), so they outlive this process in the spill file.
            self._producer.purge(in_queue=True, in_flight=True, blocking=True)
            self._producer.flush(0)
            left = self.unacknowledged()
        if self._spill is not None:
            self._spill.close()
            self._spill = None
        if left:
            logger.error(
                "%d events not acknowledged by %s at close; spilled batches stay in %s for "
                "`runstream sync` (last error: %s)",
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


def resend_spill_files(settings: Settings, spill_dir: Path, timeout: float = 60.0) -> int:
    """Produce every batch of every spill file in ``spill_dir`` that no live process holds,
    file by file, deleting each file once all its batches are acknowledged. The batches keep
    their bytes, so their event identities (producer id, sequence) are unchanged and readers
    deduplicate any batch that had reached Kafka before.

    Returns the number of events resent and acknowledged.

    Raises:
        SinkError: a file's batches were not all acknowledged within ``timeout`` (that file
            and the ones after it are kept), or a spill file cannot be read.
    """
    producer = Producer({**_KAFKA_DEFAULTS, **settings.kafka_config(), **_KAFKA_FORCED})
    topic = Topics(settings.topic_prefix).events
    codec = Codec()
    sent = 0
    for path in log_files(spill_dir):
        if is_locked(path):
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
