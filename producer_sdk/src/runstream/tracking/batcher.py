"""The background thread between SDK calls and a sink.

A call validates its input and appends to its run's queue (a ``deque``: appends and pops
are thread-safe). The batcher's thread wakes every ``interval`` seconds (or when asked),
turns each run's queued items into :class:`EventBatch` messages (metric points as
columns), gives each event its sequence number, encodes and hands the bytes to the sink.

The identity of this process as a producer is created lazily, and again in a forked child
(whose inherited queues belong to the parent and are dropped there).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from itertools import islice

from runstream.contract.codec import Codec
from runstream.contract.events import Event, EventBatch, MetricColumns, Producer, encode_batch
from runstream.contract.exceptions import EncodeError
from runstream.tracking.environment import new_producer
from runstream.tracking.exceptions import SinkError
from runstream.tracking.sinks import Sink
from runstream.tracking.threads import DaemonThread

logger = logging.getLogger(__name__)

MAX_BATCH_POINTS = 10_000
MAX_BATCH_EVENTS = 500
MAX_MESSAGE_BYTES = 900_000
# Points queued per run before a logging call waits for the thread: what the thread encodes
# and journals in a few ms; with the thread waking every DEFAULT_INTERVAL s, a point is in
# the journal <= 50 ms after it is accepted.
DEFAULT_MAX_PENDING = 5_000
DEFAULT_INTERVAL = 0.01
MAX_WAIT = 0.1  # the longest a logging call waits for the thread

MetricItem = tuple[str, float, int, int]


@dataclass(eq=False)
class RunQueue:
    """What one run handle has logged and the batcher has not taken yet."""

    run_id: str
    metrics: deque[MetricItem] = field(default_factory=deque)
    events: deque[Event] = field(default_factory=deque)
    closed: bool = False

    def __len__(self) -> int:
        return len(self.metrics) + len(self.events)


@dataclass
class _FlushRequest:
    timeout: float
    done: threading.Event = field(default_factory=threading.Event)
    unacknowledged: int = 0
    error: BaseException | None = None


class Batcher:
    """Owns the background thread, the producer identity and the sequence numbers.

    Args:
        sink: where encoded batches go.
        interval: how often (seconds) queued items are batched when nobody asks sooner.
        max_pending: queued points of a run above which a logging call waits for the
            thread to catch up: memory stays bounded and an accepted point reaches the
            journal within ~50 ms at full speed.

    While the sink reports events at risk (:meth:`Sink.failure`), every metric call and
    every flush raises :class:`SinkError` with that report.
    """

    def __init__(
        self,
        sink: Sink,
        *,
        interval: float = DEFAULT_INTERVAL,
        max_pending: int = DEFAULT_MAX_PENDING,
        codec: Codec | None = None,
    ) -> None:
        self.sink = sink
        self.interval = interval
        self.max_pending = max_pending
        self._max_pending = max_pending
        self._codec = codec or Codec()
        self._setup()
        reference = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork(reference))

    def _setup(self) -> None:
        self._lock = threading.Lock()
        self._work = threading.Lock()  # held while batching or driving the sink
        self._wake = threading.Event()
        self._caught_up = threading.Condition(self._lock)
        self._queues: list[RunQueue] = []
        self._requests: list[_FlushRequest] = []
        self._producer: Producer | None = None
        self._sequence = 0
        self._lost = 0
        self._thread: DaemonThread | None = None
        self._closed = False
        self._failure = ""

    @property
    def producer(self) -> Producer:
        """This process's producer identity (created on first use)."""
        if self._producer is None:
            self._start()
        assert self._producer is not None
        return self._producer

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._producer = new_producer()
            self.sink.open(self._producer.id)
            self._thread = DaemonThread(self._run, f"runstream-batcher-{self._producer.id}")
            self._thread.start()

    def register(self, run_id: str) -> RunQueue:
        """A new queue for one run handle, served by the thread (started if needed)."""
        if self._thread is None:
            self._start()
        queue = RunQueue(run_id)
        with self._lock:
            self._queues.append(queue)
        return queue

    def wake(self) -> None:
        """Ask the thread to batch now rather than at its next interval."""
        self._wake.set()

    def backpressure(self) -> None:
        """Called when a queue is over ``max_pending``: batch and journal the queued items
        on the calling thread when the background thread is idle (so a busy machine that
        does not schedule that thread does not leave accepted points out of the journal),
        else wait until the thread has written them. Memory stays bounded and accepted
        points reach the journal quickly even if callers outpace encoding.

        Raises:
            SinkError: the sink reports events at risk (the journal folder failed).
        """
        if self._failure:
            raise SinkError(self._failure)
        if self._work.acquire(blocking=False):
            try:
                self._drain()
                self._check_sink()
            except Exception:  # the thread meets it again and reports it to flushers
                logger.exception("runstream batcher failed on the calling thread")
            finally:
                self._work.release()
            return
        self._wake.set()
        with self._caught_up:  # never blocks a call for long: at most MAX_WAIT seconds
            self._caught_up.wait(timeout=MAX_WAIT)

    def flush(self, timeout: float) -> int:
        """Batch everything queued so far and wait up to ``timeout`` seconds until the sink has
        it acknowledged; return how many events are not.

        Raises:
            SinkError: the sink failed.
        """
        if self._thread is None:
            return self._lost
        request = _FlushRequest(timeout)
        with self._lock:
            self._requests.append(request)
        self._wake.set()
        if not request.done.wait(timeout + 5.0):
            return self.pending() + self.sink.unacknowledged()
        if isinstance(request.error, SinkError):
            raise request.error
        if request.error is not None:
            raise SinkError(f"flush failed: {request.error}") from request.error
        return request.unacknowledged

    def pending(self) -> int:
        """Items queued and not yet taken by the thread."""
        with self._lock:
            return sum(len(q) for q in self._queues)

    def close(self, timeout: float) -> int:
        """Flush up to ``timeout`` seconds, stop the thread, close the sink; return how many
        events are not acknowledged (they stay spilled where the sink keeps them)."""
        if self._thread is None or self._closed:
            return 0
        try:
            self.flush(timeout)
        except SinkError as error:  # counted in what the sink's close returns
            logger.error("%s", error)
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=5.0)
        return self.sink.close(0.0) + self._lost

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.interval)
            self._wake.clear()
            with self._lock:
                requests, self._requests = self._requests, []
            with self._work:
                self._work_once(requests)

    def _work_once(self, requests: list[_FlushRequest]) -> None:
        try:
            self._drain()
            self.sink.service()
            self._check_sink()
        except Exception as error:  # the thread must survive: report to flushers
            logger.exception("runstream batcher failed")
            for request in requests:
                request.error = error
                request.done.set()
            return
        for request in requests:
            self._serve(request)

    def _check_sink(self) -> None:
        """Make the next metric call raise while the sink reports events at risk (through
        the queue-length check every call makes anyway: no cost on the hot path)."""
        failure = self.sink.failure()
        if failure:
            self._failure = failure
            self.max_pending = -1
        elif self._failure:
            self._failure = ""
            self.max_pending = self._max_pending

    def _serve(self, request: _FlushRequest) -> None:
        try:
            request.unacknowledged = self.sink.flush(request.timeout) + self._lost
        except Exception as error:
            request.error = error
        self._check_sink()
        request.done.set()

    def _drain(self) -> None:
        with self._lock:
            queues = list(self._queues)
        for queue in queues:
            while queue.events or queue.metrics:
                self._send_batch(queue)
            if queue.closed and not queue.events and not queue.metrics:
                with self._lock:
                    self._queues.remove(queue)
        with self._caught_up:
            self._caught_up.notify_all()

    def _send_batch(self, queue: RunQueue) -> None:
        events_queue, metrics_queue = queue.events, queue.metrics
        # An ended run's last points go before its RunEnded, so readers see the end last.
        take = 0 if queue.closed and metrics_queue else min(len(events_queue), MAX_BATCH_EVENTS)
        # Items stay queued until written: the queue length a logging call checks counts
        # everything not yet in the journal (only this thread pops; callers append right).
        events = list(islice(events_queue, take))
        points = list(islice(metrics_queue, min(len(metrics_queue), MAX_BATCH_POINTS)))
        try:
            self._encode_and_send(queue.run_id, events, points)
        finally:
            for _ in range(len(events)):
                events_queue.popleft()
            for _ in range(len(points)):
                metrics_queue.popleft()

    def _encode_and_send(self, run_id: str, events: list[Event], points: list[MetricItem]) -> None:
        columns = _columns(points)
        batch = EventBatch(run_id, self.producer, self._sequence, tuple(events), columns)
        try:
            value = encode_batch(self._codec, batch)
        except EncodeError:
            if len(events) + len(points) > 1:
                self._split(run_id, events, points)
                return
            self._sequence += 1
            self._lost += 1
            logger.exception("run %s: an event cannot be encoded and is lost", run_id)
            return
        if len(value) > MAX_MESSAGE_BYTES and len(events) + len(points) > 1:
            self._split(run_id, events, points)
            return
        self._sequence += len(batch)
        try:
            self.sink.send(run_id, value, len(batch))
        except SinkError:
            self._lost += len(batch)
            raise

    def _split(self, run_id: str, events: list[Event], points: list[MetricItem]) -> None:
        if len(events) > 1 or (events and points):
            half = max(1, len(events) // 2)
            self._encode_and_send(run_id, events[:half], [])
            self._encode_and_send(run_id, events[half:], points)
        else:
            half = len(points) // 2
            self._encode_and_send(run_id, events, points[:half])
            self._encode_and_send(run_id, [], points[half:])


def _columns(points: list[MetricItem]) -> MetricColumns:
    if not points:
        return MetricColumns()
    keys, values, steps, timestamps = zip(*points, strict=True)
    unique = list(dict.fromkeys(keys))
    index = {key: i for i, key in enumerate(unique)}
    return MetricColumns(
        unique, list(map(index.__getitem__, keys)), list(steps), list(values), list(timestamps)
    )


def _after_fork(reference: weakref.ref[Batcher]) -> None:
    batcher = reference()
    if batcher is None:
        return
    # The parent's thread, locks and identity are not this process's, and the items queued
    # before the fork are the parent's to send: keep the run handles, drop their items.
    queues = [queue for queue in batcher._queues if not queue.closed]
    batcher._setup()
    batcher.max_pending = batcher._max_pending  # the parent's failure is not the child's
    for queue in queues:
        queue.metrics.clear()
        queue.events.clear()
    batcher._queues = queues
    if queues:
        batcher._start()


def now_us() -> int:
    """Microseconds since the epoch."""
    return time.time_ns() // 1000
