"""The explicit client: one per tracking URI; runs, flushing, and exit handling.

The fluent API (``runstream.tracking.fluent``) is a thin layer over a :class:`Client`.
"""

from __future__ import annotations

import atexit
import logging
import os
import uuid
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from multiprocessing import util as multiprocessing_util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runstream.contract.events import (
    ArtifactLogged,
    Event,
    Payload,
    RunDeleted,
    RunStarted,
    TagSet,
)
from runstream.core.settings import Settings
from runstream.tracking import exits
from runstream.tracking import validation as check
from runstream.tracking.batcher import DEFAULT_MAX_PENDING, Batcher, now_us
from runstream.tracking.code_probe import CodeProbe
from runstream.tracking.environment import source_name
from runstream.tracking.exceptions import FlushError
from runstream.tracking.heartbeat import Heartbeats
from runstream.tracking.run import Run, _run_update
from runstream.tracking.sinks import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_IN_FLIGHT_BYTES,
    KafkaSink,
    LocalLogSink,
    NoOpSink,
    Sink,
)

if TYPE_CHECKING:
    from runstream.query.engine import QueryEngine
    from runstream.tracking.artifacts import Upload, Uploader, UploadPolicy

logger = logging.getLogger(__name__)

EXIT_FLUSH_TIMEOUT = 10.0


def make_sink(
    settings: Settings,
    spill_dir: Path,
    max_in_flight: int,
    max_buffered_bytes: int = DEFAULT_MAX_IN_FLIGHT_BYTES,
) -> Sink:
    """The sink of the settings' tracking URI: Kafka, the local log, or no-op."""
    scheme = settings.tracking_uri.scheme
    if scheme == "kafka":
        return KafkaSink(settings, spill_dir, max_in_flight, settings.journal, max_buffered_bytes)
    if scheme == "file":
        return LocalLogSink(settings.tracking_uri.path)
    return NoOpSink()


class Client:
    """Logs runs to one tracking URI from this process.

    Args:
        tracking_uri: ``kafka://host:port``, ``file:///path`` or ``noop://``; default from
            ``RUNSTREAM_TRACKING_URI`` (see :class:`runstream.core.settings.Settings`).
        settings: fully resolved settings (instead of ``tracking_uri``).
        spill_dir: the journal folder: every batch is written there before it is produced
            and stays until Kafka acknowledges it (default ``settings.spill_dir``).
        max_in_flight: events waiting for Kafka's acknowledgement; past it, batches wait in
            the journal.
        max_pending: points queued per run before a metric call waits for the background
            thread (bounds memory and the time from a call to the journal).
        max_buffered_bytes: bytes of encoded batches waiting for Kafka's acknowledgement in
            memory (default 64 MiB); past it, batches wait in the journal.
        exit_timeout: how long the exit handler waits for acknowledgements.
        upload_policy: retries and threads of artifact uploads.

    Raises:
        ConfigError: the tracking URI or an environment setting is malformed.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        settings: Settings | None = None,
        spill_dir: str | os.PathLike[str] | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_buffered_bytes: int = DEFAULT_MAX_IN_FLIGHT_BYTES,
        exit_timeout: float = EXIT_FLUSH_TIMEOUT,
        upload_policy: UploadPolicy | None = None,
    ) -> None:
        self.settings = settings or Settings.resolve(tracking_uri)
        self.spill_dir = Path(spill_dir) if spill_dir else self.settings.spill_dir
        self.batcher = Batcher(
            make_sink(self.settings, self.spill_dir, max_in_flight, max_buffered_bytes),
            max_pending=max_pending,
        )
        self.exit_timeout = exit_timeout
        self.heartbeats = Heartbeats(self.batcher, self.settings.heartbeat_interval)
        self._code = CodeProbe(self.record)
        self._upload_policy = upload_policy
        self._uploader: Uploader | None = None
        self._context_runs: list[Run] = []
        self._engine: QueryEngine | None = None
        self._started: list[Run] = []  # runs this process started, ended at exit if open
        reference = weakref.ref(self)
        atexit.register(_close_at_exit, reference)
        multiprocessing_util.register_after_fork(self, _close_at_child_exit)

    @property
    def tracking_uri(self) -> str:
        """The tracking URI this client logs to."""
        return str(self.settings.tracking_uri)

    def start_run(
        self,
        run_name: str | None = None,
        collection: str | None = None,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        labels: Mapping[str, Any] | None = None,
        capture_code: bool = True,
        heartbeat: bool = True,
    ) -> Run:
        """Start a run (or join one: many workers pass the same ``run_id``) and log its
        RunStarted event; unless ``capture_code`` is False a thread of the client's adds the
        code version (source, command, git, packages) right after (see
        :mod:`runstream.tracking.code_probe`; a flush waits for it). A run without a name is
        named by its id; a run without a collection goes to the one named after its source
        (the notebook or script file).
        While the run is open a background thread sends its heartbeats (unless ``heartbeat``
        is False: a run whose later events come from other processes), so readers show it
        CRASHED if this process dies without ending it.

        Raises:
            ValidationError: the run id is not a safe path segment, or a name, tag or label
                breaks its rule.
        """
        rid = check.run_id(run_id) if run_id is not None else uuid.uuid4().hex
        names = _run_update(
            rid if run_name is None else run_name,
            source_name() if collection is None else collection,
            rid,
        )
        checked_tags = check.string_map(tags, "tags", check.MAX_TAG_LENGTH, rid)
        checked_labels = check.string_map(labels, "labels", check.MAX_TAG_LENGTH, rid)
        started = RunStarted(
            start_time_us=now_us(),
            name=names.name,
            collection=names.collection,
            tags=checked_tags,
        )
        run = Run(self, rid, self.batcher.register(rid), names.name, names.collection)
        events = [Event(started.start_time_us, started)]
        if heartbeat:
            events.append(Event(started.start_time_us, self.heartbeats.first()))
        events += [
            Event(started.start_time_us, TagSet(k, v, "labels")) for k, v in checked_labels.items()
        ]
        run._queue.events.extend(events)
        self.batcher.wake()
        if capture_code:
            self._code.submit(rid, started.start_time_us)
        self._started = [r for r in self._started if r.status == "RUNNING"] + [run]
        if heartbeat:
            self.heartbeats.add(run)
        exits.watch()
        return run

    def attach(self, run_id: str) -> Run:
        """A handle on an existing run without logging RunStarted (pipelines, ``emit``).

        Raises:
            ValidationError: the run id is not a safe path segment.
        """
        rid = check.run_id(run_id)
        return Run(self, rid, self.batcher.register(rid))

    def record(
        self, stream_id: str, payloads: Sequence[Payload], time_us: int | None = None
    ) -> None:
        """Queue events of the contract as they are (for plugins: experiments, restores, runs
        started with a given start time) on a queue of their own, closed once filled. They
        are checked by the readers' shared validation, not by the SDK's call rules.

        Raises:
            ValidationError: the stream id is not a safe path segment.
        """
        queue = self.batcher.register(check.run_id(stream_id))
        when = now_us() if time_us is None else time_us
        queue.events.extend(Event(when, payload) for payload in payloads)
        queue.closed = True
        self.batcher.wake()

    def delete_run(self, run_id: str, reason: str | None = None) -> None:
        """Log that run ``run_id`` is deleted.

        Raises:
            ValidationError: the run id or reason breaks its rule.
        """
        handle = self.attach(run_id)
        text = None if reason is None else check.tag_value(reason, run_id)
        handle._queue.events.append(Event(now_us(), RunDeleted(text)))
        handle._ended = True
        handle._queue.closed = True
        self.batcher.wake()

    def update_run_info(
        self,
        run_id: str,
        run_name: str | None = None,
        run_collection_name: str | None = None,
        *,
        collection: str | None = None,
    ) -> None:
        """Rename run ``run_id`` and/or move it to another collection.

        Raises:
            ValidationError: the run id or a name breaks its rule.
        """
        handle = self.attach(run_id)
        handle.update_run_info(run_name, run_collection_name, collection=collection)
        handle._queue.closed = True

    def load_model(self, run_id: str, name: str) -> Any:
        """Load the model logged as ``name`` in run ``run_id`` (by any process): everything
        this client logged is flushed first, then the model is read from the store.

        Raises:
            RunNotFoundError: no visible run has this id.
            ArtifactNotFoundError: the run has no model ``name`` (no manifest).
            ModelError: the model cannot be loaded (library missing, unreadable file).
            FlushError: this client's own events were not acknowledged in time.
        """
        from runstream.tracking.reads import load_logged_model

        self.flush()
        return load_logged_model(self.settings, run_id, name)

    @contextmanager
    def late(self, run_id: str) -> Iterator[Run]:
        """A handle on run ``run_id`` for the calls of one ``with`` block, even when the run
        has ended (SAP logs to an ended run with ``run=``); its queue closes at the end.

        Raises:
            ValidationError: the run id is not a safe path segment.
        """
        handle = self.attach(run_id)
        try:
            yield handle
        finally:
            handle._queue.closed = True
            self.batcher.wake()

    def reader(self) -> QueryEngine:
        """The query engine of this client's tracking URI and store, after a flush of
        everything this client logged (created on first use, refreshed at every read).

        Raises:
            ReadUnavailableError: the query component is not installed.
            FlushError: this client's own events were not acknowledged in time.
        """
        from runstream.tracking.reads import open_engine

        self.flush()
        if self._engine is None:
            self._engine = open_engine(self.settings)
        return self._engine

    def get_runs(
        self,
        run_ids: Sequence[str] | None = None,
        collection: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> list[Any]:
        """The runs with one of ``run_ids`` (all when None) in ``collection`` carrying every
        tag of ``tags``, as query ``Run`` objects with SAP's system entries (params ``start``,
        ``end``; tag ``runName``), oldest first. Sees everything logged until now.

        Raises:
            ReadUnavailableError: the query component is not installed.
            FlushError: this client's own events were not acknowledged in time.
        """
        from runstream.tracking.reads import find_runs

        return find_runs(self.reader(), run_ids, collection, tags)

    def get_metrics_history(
        self,
        run_ids: Sequence[str],
        keys: Sequence[str] | None = None,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
    ) -> list[dict[str, Any]]:
        """Every point of metrics ``keys`` (all when None) of each run, in step order (see
        :func:`runstream.tracking.reads.metric_histories`); page with the step range.

        Raises:
            ReadUnavailableError: the query component is not installed.
            RunNotFoundError: a run is not visible.
            FlushError: this client's own events were not acknowledged in time.
        """
        from runstream.tracking.reads import metric_histories

        return metric_histories(self.reader(), run_ids, keys, start_step, end_step)

    def log_lines(
        self, run_id: str, levels: list[str] | None, since_us: int | None, until_us: int | None
    ) -> list[dict[str, Any]]:
        """The log lines of run ``run_id`` (see :func:`runstream.tracking.reads.log_lines`),
        after a flush of this client's events.

        Raises:
            ReadUnavailableError: the query component is not installed.
            FlushError: this client's own events were not acknowledged in time.
        """
        from runstream.tracking.reads import log_lines

        self.flush()
        return log_lines(self.settings, run_id, levels, since_us, until_us)

    @property
    def uploader(self) -> Uploader:
        """The artifact uploader of this client (created on first use)."""
        if self._uploader is None:
            from runstream.tracking.artifacts import Uploader

            self._uploader = Uploader(self.settings, self._record_artifact, self._upload_policy)
        return self._uploader

    def _upload(self, upload: Upload) -> None:
        """Store ``upload`` in the background (nothing is stored in no-op mode)."""
        if self.settings.no_op:
            if upload.cleanup is not None:
                import shutil

                shutil.rmtree(upload.cleanup, ignore_errors=True)
            return
        self.uploader.submit(upload)

    def _record_artifact(self, run_id: str, event: ArtifactLogged) -> None:
        """Produce the event of a stored artifact (from an upload thread), whether or not
        the run's handle has ended since: a queue of its own, closed once filled."""
        queue = self.batcher.register(run_id)
        queue.events.append(Event(now_us(), event))
        queue.closed = True
        self.batcher.wake()

    def flush(self, timeout: float = 30.0) -> None:
        """Return when every artifact logged so far through this client is stored and every
        event is acknowledged.

        Raises:
            FlushError: some were not within ``timeout``; it says how many (they stay
                buffered or spilled and are resent later).
            ArtifactError: an artifact upload failed (its event was not produced).
            SinkError: the sink failed.
        """
        captures = self._code.wait(timeout)
        if captures:
            raise FlushError(captures, timeout, "the code version of started runs not captured")
        uploads = 0 if self._uploader is None else self._uploader.wait(timeout)
        if uploads:
            raise FlushError(uploads, timeout, "artifact uploads still running")
        left = self.batcher.flush(timeout)
        if left:
            detail = getattr(self.batcher.sink, "last_error", "")
            raise FlushError(left, timeout, f"last error: {detail}" if detail else "")

    def close(self, timeout: float | None = None) -> int:
        """Flush (up to ``timeout``, default ``exit_timeout``) and stop the background thread;
        return how many events were not acknowledged (logged as an error, kept spilled)."""
        wait = self.exit_timeout if timeout is None else timeout
        self.heartbeats.close()
        self._code.wait(wait)
        if self._uploader is not None:
            self._uploader.close(wait)
        left = self.batcher.close(wait)
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        if left:
            logger.error("%d events of %s not acknowledged at close", left, self.tracking_uri)
        return left

    def end_open_runs(self, status: str) -> int:
        """End with ``status`` every run this client started that is still open (the
        process is exiting without ``end_run``); how many were ended."""
        open_runs = [run for run in self._started if run.status == "RUNNING"]
        for run in open_runs:
            logger.info("run %s left open at exit: ending it %s", run.run_id, status)
            run.end(status)
        self._started = []
        return len(open_runs)

    def _left_context(self, run: Run) -> None:
        """Hook for the fluent layer: a run used as a context manager was exited."""
        hook = getattr(run, "_on_exit", None)
        if hook is not None:
            hook()


_INHERITED_ENGINES: list[object] = []
"""Query engines a forked child inherited: never closed nor freed there (DuckDB's connection
and threads belong to the parent)."""


def _close_at_child_exit(client: Client) -> None:
    # A multiprocessing child ends with os._exit, which skips atexit handlers but runs
    # multiprocessing's own finalizers: flush there too.
    client._started = []  # the parent's runs: the parent ends them, not this child
    if client._engine is not None:  # the parent's DuckDB connection: closing or even freeing
        _INHERITED_ENGINES.append(client._engine)  # it in the child crashes; keep it untouched
        client._engine = None
    multiprocessing_util.Finalize(
        None, _close_at_exit, args=(weakref.ref(client),), exitpriority=100
    )


def _close_at_exit(reference: weakref.ref[Client]) -> None:
    client = reference()
    if client is not None:
        client.end_open_runs(exits.exit_status())
        client.close()
