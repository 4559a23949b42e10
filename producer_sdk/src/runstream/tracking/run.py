"""A run handle: what a training process logs to (explicitly, or through the fluent API).

Every method validates on the caller's thread and appends to the run's queue; the batcher's
thread does the rest. The seeds' styles are methods here too: MLflow/Submarine
(``log_metric``), SAP (``log_parameters``, ``log_metrics([{"name", "value"}])``,
``persist_run``), Polyaxon (``log_metrics(step=, **metrics)``) and ML-Dash
(``params.set(**nested)``, ``metrics("train").log(loss=, epoch=)``, ``log(msg, level=)``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from runstream.contract.events import (
    Event,
    LogLine,
    ParamLogged,
    Payload,
    RunDeleted,
    RunEnded,
    RunUpdated,
    TagSet,
)
from runstream.tracking import validation as check
from runstream.tracking.batcher import Batcher, RunQueue, now_us
from runstream.tracking.exceptions import RunEndedError, ValidationError

if TYPE_CHECKING:
    from runstream.tracking.artifacts import Upload, UploadFile

_MIN_STEP, _MAX_STEP = check.STEP_RANGE
_MIN_MS, _MAX_MS = check.TIMESTAMP_MS_RANGE
MAX_MESSAGE_LENGTH = 100_000


class RunOwner(Protocol):
    """What a run needs of the client that started it (:class:`~runstream.tracking.Client`)."""

    batcher: Batcher

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every event logged so far is acknowledged."""

    def _upload(self, upload: Upload) -> None:
        """Store and record the files of one logging call, in order."""

    def _left_context(self, run: Run) -> None:
        """``run`` ended: it is no longer the active run of its context."""

    def reader(self) -> Any:
        """The query engine, after a flush of what was logged (for the read calls)."""

    def log_lines(
        self, run_id: str, levels: list[str] | None, since_us: int | None, until_us: int | None
    ) -> list[dict[str, Any]]:
        """The log lines of a run, after a flush (see ``runstream.tracking.reads``)."""


class Run:
    """A handle on one run in this process. Use ``Client.start_run`` to get one.

    As a context manager the run ends FINISHED, or FAILED if an exception escapes.
    """

    def __init__(
        self,
        client: RunOwner,
        run_id: str,
        queue: RunQueue,
        name: str | None = None,
        collection: str | None = None,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.name = name
        self.collection = collection
        self.status = "RUNNING"
        self._queue = queue
        self._metrics = queue.metrics
        self._keys = check.KeyCache()
        self._valid_keys = self._keys.valid
        self._ended = False
        self._context_token: Any = None
        self._next_steps: dict[str, int] = {}  # ML-Dash: the next step of each metrics(prefix)

    def __repr__(self) -> str:
        return f"Run(run_id={self.run_id!r}, name={self.name!r}, status={self.status!r})"

    # --- metrics (the hot path) --------------------------------------------------------
    def log_metric(self, key: str, value: Any, step: Any = None, timestamp: Any = None) -> None:
        """Log one metric point (step defaults to 0, timestamp to now, in ms).

        Raises:
            ValidationError: the key, value, step or timestamp breaks its rule.
            RunEndedError: the run has ended.
            SinkError: events are at risk (the journal folder cannot be written); it names
                the folder and their count.
        """
        if type(key) is not str or key not in self._valid_keys:
            self._keys.check(key, "key", self.run_id)
        if type(value) is not float:
            value = check.metric_value(value, key, self.run_id)
        if step is None:
            step = 0
        elif type(step) is not int or not _MIN_STEP <= step <= _MAX_STEP:
            step = check.step_value(step, self.run_id)
        if timestamp is None:
            timestamp = int(time.time() * 1000)
        elif type(timestamp) is not int or not _MIN_MS <= timestamp <= _MAX_MS:
            timestamp = check.timestamp_ms(timestamp, self.run_id)
        if self._ended:
            raise RunEndedError(f"run {self.run_id} has ended; start a new run to log to")
        self._metrics.append((key, value, step, timestamp))
        if len(self._metrics) > self.client.batcher.max_pending:
            self.client.batcher.backpressure()

    def log_metrics(
        self,
        metrics: Mapping[str, Any] | Iterable[Any] | None = None,
        step: Any = None,
        timestamp: Any = None,
        **named: Any,
    ) -> None:
        """Log several points at once, in any of the seeds' forms: a mapping
        ``{"loss": 0.1}`` (MLflow), keyword arguments ``log_metrics(step=3, loss=0.1)``
        (Polyaxon), or a list of ``{"name", "value", "step"?, "timestamp"?}`` mappings or
        objects with those attributes (SAP). All points are checked before any is logged.

        Raises:
            ValidationError: a point breaks a rule (then none of this call is logged).
            RunEndedError: the run has ended.
            SinkError: events are at risk (the journal folder cannot be written).
        """
        points: list[tuple[str, Any, Any, Any]] = []
        if isinstance(metrics, Mapping):
            points.extend((k, v, step, timestamp) for k, v in metrics.items())
        elif metrics is not None:
            for item in metrics:
                name, value, extra = _named_item(item, "metrics", self.run_id)
                points.append(
                    (name, value, extra.get("step", step), extra.get("timestamp", timestamp))
                )
        points.extend((k, v, step, timestamp) for k, v in named.items())
        checked = self._checked_points(points)
        self._check_open()
        self._metrics.extend(checked)
        if len(self._metrics) > self.client.batcher.max_pending:
            self.client.batcher.backpressure()

    def log_points(self, points: Iterable[tuple[Any, Any, Any, Any]]) -> None:
        """Log ``(key, value, step, timestamp)`` points (step None: 0; timestamp None: now,
        in ms), all checked before any is logged (for plugins handing over batches).

        Raises:
            ValidationError: a point breaks a rule (then none of this call is logged).
            RunEndedError: the run has ended.
        """
        checked = self._checked_points(points)
        self._check_open()
        self._metrics.extend(checked)
        if len(self._metrics) > self.client.batcher.max_pending:
            self.client.batcher.backpressure()

    def log_columns(
        self,
        keys: Sequence[Any],
        values: Sequence[Any],
        steps: Sequence[Any],
        timestamps: Sequence[Any],
        *,
        distinct_keys: AbstractSet[Any] | None = None,
    ) -> bool:
        """Log points given as four equal-length columns in one step, when they are plain
        (for plugins handing over batches): every key valid, every value a ``float``, every
        step and timestamp an ``int`` within range. The columns are checked as wholes (the
        distinct keys, the set of types, the least and greatest step and timestamp). Returns
        False and logs nothing when a column is not plain (ints as values, numpy scalars,
        None...): :meth:`log_points` then converts or refuses each point. A caller that has
        the set of ``keys`` already (a plugin that checked them by its own rules) passes it
        as ``distinct_keys``: it must be exactly ``set(keys)``.

        Raises:
            ValidationError: the columns differ in length, or a key breaks its rule.
            RunEndedError: the run has ended.
        """
        count = len(keys)
        if not len(values) == len(steps) == len(timestamps) == count:
            raise ValidationError(
                "metrics",
                "equal-length columns",
                f"got {count} keys, {len(values)} values, {len(steps)} steps and "
                f"{len(timestamps)} timestamps",
                self.run_id,
            )
        try:
            fresh = (set(keys) if distinct_keys is None else distinct_keys) - self._valid_keys
        except TypeError:  # an unhashable key
            return False
        for key in fresh:  # few distinct keys: each checked once
            self._keys.check(key, "key", self.run_id)
        if count and not (
            _only(values, float)
            and _only(steps, int)
            and min(steps) >= _MIN_STEP
            and max(steps) <= _MAX_STEP
            and _only(timestamps, int)
            and min(timestamps) >= _MIN_MS
            and max(timestamps) <= _MAX_MS
        ):
            return False
        self._check_open()
        self._metrics.extend(zip(keys, values, steps, timestamps, strict=True))
        if len(self._metrics) > self.client.batcher.max_pending:
            self.client.batcher.backpressure()
        return True

    def _checked_points(
        self, points: Iterable[tuple[Any, Any, Any, Any]]
    ) -> list[tuple[str, float, int, int]]:
        valid = self._valid_keys
        checked: list[tuple[str, float, int, int]] = []
        append = checked.append
        for point in points:  # the usual point passes the cheap checks; others the full ones
            key, value, step, timestamp = point
            if (
                type(key) is str
                and key in valid
                and type(value) is float
                and type(step) is int
                and _MIN_STEP <= step <= _MAX_STEP
                and type(timestamp) is int
                and _MIN_MS <= timestamp <= _MAX_MS
            ):
                append(point)
            else:
                append(self._checked_point(key, value, step, timestamp))
        return checked

    def _checked_point(
        self, key: Any, value: Any, step: Any, timestamp: Any
    ) -> tuple[str, float, int, int]:
        return (
            key
            if type(key) is str and key in self._valid_keys
            else self._keys.check(key, "key", self.run_id),
            value if type(value) is float else check.metric_value(value, str(key), self.run_id),
            step
            if type(step) is int and _MIN_STEP <= step <= _MAX_STEP
            else check.step_value(step, self.run_id),
            int(time.time() * 1000)
            if timestamp is None
            else timestamp
            if type(timestamp) is int and _MIN_MS <= timestamp <= _MAX_MS
            else check.timestamp_ms(timestamp, self.run_id),
        )

    @property
    def metrics(self) -> Metrics:
        """ML-Dash style: ``run.metrics("train").log(loss=0.3, epoch=2)`` logs ``train/loss``
        and ``train/epoch`` at one shared step; ``run.metrics.log(epoch=2, train={"loss":
        0.3})`` logs ``epoch`` and ``train/loss`` (a mapping is a group)."""
        return Metrics(self)

    # --- params, tags, labels ------------------------------------------------------------
    def log_param(self, key: str, value: Any) -> None:
        """Log one parameter (its value as ``str(value)``, at most 6000 characters).

        Raises:
            ValidationError: the key or value breaks its rule.
            RunEndedError: the run has ended.
        """
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any] | None = None, **named: Any) -> None:
        """Log parameters, as a mapping or keyword arguments (Polyaxon); nested mappings are
        flattened to dotted keys (``{"optim": {"lr": 0.1}}`` logs ``optim.lr``). All are
        checked before any is logged.

        Raises:
            ValidationError: a key or value breaks its rule.
            RunEndedError: the run has ended.
        """
        self._log_params({**(params or {}), **named}, "key", check.MAX_KEY_LENGTH)

    def _log_params(self, params: Mapping[str, Any], field: str, key_limit: int) -> None:
        self._emit(
            [
                ParamLogged(
                    check.check_key(k, field, self.run_id, key_limit),
                    check.param_value(v, self.run_id),
                )
                for k, v in check.flatten(params, run_id=self.run_id).items()
            ]
        )

    def log_parameters(self, parameters: Mapping[str, Any] | Iterable[Any]) -> None:
        """SAP style: a mapping, or a list of ``{"name", "value"}`` items (or objects); values
        converted to strings, names of at most 256 characters (SAP's limit).

        Raises:
            ValidationError: a name or value breaks its rule (none of the call is logged).
            RunEndedError: the run has ended.
        """
        self._log_params(
            _as_mapping(parameters, "parameters", self.run_id), "name", check.MAX_PARAM_KEY_LENGTH
        )

    def set_tag(self, key: str, value: Any) -> None:
        """Set one tag (value as ``str(value)``, at most 5000 characters).

        Raises:
            ValidationError: the key or value breaks its rule.
            RunEndedError: the run has ended.
        """
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any] | Iterable[Any]) -> None:
        """Set tags: a mapping, or a list of ``{"name", "value"}`` items (SAP).

        Raises:
            ValidationError: a key or value breaks its rule.
            RunEndedError: the run has ended.
        """
        self._emit(self._tag_events(_as_mapping(tags, "tags", self.run_id), "tags"))

    def log_tags(self, tags: str | Iterable[str] | Mapping[str, Any]) -> None:
        """Polyaxon style: tags as a string or a list of strings (each a tag with an empty
        value), or a mapping.

        Raises:
            ValidationError: a tag breaks its rule (none of the call is logged).
            RunEndedError: the run has ended.
        """
        self.set_tags(tags)

    def set_labels(self, labels: Mapping[str, Any] | Iterable[Any]) -> None:
        """Set labels (tags in their own namespace): a mapping, or ``{"name", "value"}``
        items; a bare string is a label with an empty value.

        Raises:
            ValidationError: a key or value breaks its rule.
            RunEndedError: the run has ended.
        """
        self._emit(self._tag_events(_as_mapping(labels, "labels", self.run_id), "labels"))

    def _tag_events(self, values: Mapping[str, Any], namespace: str) -> list[Payload]:
        return [
            TagSet(
                check.check_key(k, "key", self.run_id), check.tag_value(v, self.run_id), namespace
            )
            for k, v in values.items()
        ]

    @property
    def params(self) -> Params:
        """ML-Dash style: ``run.params.set(**nested)``."""
        return Params(self)

    # --- log lines -------------------------------------------------------------------------
    def log(
        self, message: str, level: str = "info", metadata: Mapping[str, Any] | None = None
    ) -> None:
        """Log a line of text with a level (debug/info/warn/warning/error/critical/fatal) and
        string metadata.

        Raises:
            ValidationError: the message is over 100000 characters, the level is unknown, or
                a metadata key or value breaks its rule.
            RunEndedError: the run has ended.
        """
        text = check.text_value(message, "message", MAX_MESSAGE_LENGTH, self.run_id)
        self._emit(
            [
                LogLine(
                    check.log_level(level, self.run_id),
                    text,
                    check.string_map(metadata, "metadata", check.MAX_TAG_LENGTH, self.run_id),
                )
            ]
        )

    def read_logs(
        self, level: str | Iterable[str] | None = None, since: Any = None, until: Any = None
    ) -> list[dict[str, Any]]:
        """ML-Dash style: this run's log lines (by any process, this one's flushed first) with
        ``level`` (one or several; any when None) logged from ``since`` to ``until``
        (datetimes or ms since the epoch, inclusive), by time, as
        ``{"time_us", "level", "message", "metadata"}``.

        Raises:
            ValidationError: an unknown level, or a bad time.
            ReadUnavailableError: the query component is not installed.
        """
        names = [level] if isinstance(level, str) else level
        levels = None if names is None else [check.log_level(n, self.run_id) for n in names]
        since_us = None if since is None else check.timestamp_ms(since, self.run_id) * 1000
        until_us = None if until is None else check.timestamp_ms(until, self.run_id) * 1000 + 999
        return self.client.log_lines(self.run_id, levels, since_us, until_us)

    # --- artifacts -------------------------------------------------------------------------
    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        """Store a local file, or a folder with every file under it, as artifacts of the run
        under ``artifact_path`` (the file or folder keeps its name). Stored in the background;
        each file's ArtifactLogged event is produced once it is stored (``flush()`` waits).

        Raises:
            ArtifactError: the local path does not exist or cannot be read.
            ValidationError: an artifact path would leave the run's artifacts.
            RunEndedError: the run has ended.
        """
        self._check_open()
        self._upload(_files().local_files(self.run_id, local_path, artifact_path))

    def log_text(self, text: str, artifact_file: str) -> None:
        """Store ``text`` (UTF-8) as the artifact ``artifact_file``.

        Raises:
            ValidationError: ``text`` is not a string, or the path is unsafe.
            RunEndedError: the run has ended.
        """
        self._check_open()
        self._upload([_files().text_file(self.run_id, text, artifact_file)])

    def log_dict(self, obj: Any, artifact_file: str) -> None:
        """Store ``obj`` as JSON or YAML (by the extension of ``artifact_file``).

        Raises:
            ValidationError: unknown extension, unserialisable object, or unsafe path.
            ArtifactError: YAML without PyYAML installed.
            RunEndedError: the run has ended.
        """
        self._check_open()
        self._upload([_files().dict_file(self.run_id, obj, artifact_file)])

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        """Store a matplotlib figure as an image (png, svg, pdf, jpg by the extension).

        Raises:
            ValidationError: unknown format, not a figure, or unsafe path.
            ArtifactError: the figure cannot be drawn.
            RunEndedError: the run has ended.
        """
        self._check_open()
        self._upload([_files().figure_file(self.run_id, figure, artifact_file)])

    def log_model(self, model: Any, name: str) -> None:
        """Save a scikit-learn, PyTorch or any picklable model with a manifest (library,
        version, how to load it) as the artifact folder ``name``; the manifest is recorded
        last, so a model with a manifest is complete. Load it with ``load_model``.

        Raises:
            ModelError: the model cannot be saved (nothing is stored).
            ValidationError: ``name`` is not a safe artifact path.
            RunEndedError: the run has ended.
        """
        self._check_open()
        model_files, folder = _files().model_files(self.run_id, model, name)
        self._upload(model_files, folder)

    def _upload(self, items: list[UploadFile], cleanup: Path | None = None) -> None:
        from runstream.tracking.artifacts import Upload

        self.client._upload(Upload(self.run_id, items, cleanup))

    # --- run lifecycle ---------------------------------------------------------------------
    def update_run_info(
        self,
        run_name: str | None = None,
        run_collection_name: str | None = None,
        *,
        collection: str | None = None,
    ) -> None:
        """Rename the run and/or move it to another collection (SAP's argument names, or
        ``collection=``); None leaves a field unchanged.

        Raises:
            ValidationError: a name is over 250 characters.
            RunEndedError: the run has ended.
        """
        target = run_collection_name if run_collection_name is not None else collection
        update = _run_update(run_name, target, self.run_id)
        self._emit([update])
        self.name = update.name if update.name is not None else self.name
        self.collection = update.collection if update.collection is not None else self.collection

    def end(self, status: str = "FINISHED") -> None:
        """End the run with FINISHED, FAILED or KILLED; later calls on it raise
        RunEndedError. Ending an ended run does nothing.

        Raises:
            ValidationError: the status is not one of those.
        """
        if self._ended:
            return
        checked = check.run_status(status, self.run_id)
        self._emit([RunEnded(checked, now_us())])
        self._ended = True
        self.status = checked
        self._queue.closed = True
        self.client.batcher.wake()

    def delete(self, reason: str | None = None) -> None:
        """Mark the run deleted (and end this handle).

        Raises:
            ValidationError: the reason is over 5000 characters.
        """
        text = None if reason is None else check.tag_value(reason, self.run_id)
        if not self._ended:
            self._emit([RunDeleted(text)])
            self._ended = True
            self.status = "DELETED"
            self._queue.closed = True
            self.client.batcher.wake()

    def flush(self, timeout: float = 30.0) -> None:
        """Return when everything logged so far (by this process) is acknowledged.

        Raises:
            FlushError: some events were not acknowledged within ``timeout``; says how many.
        """
        self.client.flush(timeout)

    def persist_run(self, timeout: float = 30.0) -> None:
        """SAP style: persist what was logged (a flush).

        Raises:
            FlushError: see :meth:`flush`.
        """
        self.flush(timeout)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.end("FAILED" if exc_type is not None else "FINISHED")
        self.client._left_context(self)

    # --- internals -------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._ended:
            raise RunEndedError(f"run {self.run_id} has ended; start a new run to log to")

    def _emit(self, payloads: list[Payload]) -> None:
        self._check_open()
        time_us = now_us()
        self._queue.events.extend(Event(time_us, payload) for payload in payloads)


class Metrics:
    """ML-Dash's ``experiment.metrics``: call it with a prefix for a :class:`MetricsLogger`,
    or ``log`` fields (mappings as groups) at one step."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def __call__(self, prefix: str) -> MetricsLogger:
        """The points under ``prefix`` (``train`` logs ``train/<field>``).

        Raises:
            ValidationError: the prefix is not a valid key.
        """
        return MetricsLogger(self.run, check.check_key(prefix, "prefix", self.run.run_id))

    def log(self, step: Any = None, timestamp: Any = None, **fields: Any) -> Metrics:
        """Log every field at ``step`` (default 0 for fields outside a group); a mapping
        field is a group: ``train={"loss": 0.3}`` logs ``train/loss``. Returns itself, so
        ``metrics.log(epoch=2).flush()`` reads as ML-Dash's does.

        Raises:
            ValidationError: a field breaks a rule (then none of this call is logged).
            RunEndedError: the run has ended.
        """
        if not fields:
            raise ValidationError("fields", "at least one", "a point needs at least one field")
        flat: dict[str, Any] = {}
        for name, value in fields.items():
            if isinstance(value, Mapping):
                flat.update({f"{name}/{k}": v for k, v in value.items()})
            else:
                flat[name] = value
        at = 0 if step is None else check.step_value(step, self.run.run_id)
        self.run.log_metrics(flat, at, timestamp)
        return self

    def flush(self, timeout: float = 30.0) -> Metrics:
        """Send what the run logged so far (see :meth:`Run.flush`); returns itself.

        Raises:
            FlushError: see :meth:`Run.flush`.
        """
        self.run.flush(timeout)
        return self


class MetricsLogger:
    """Points with several fields sharing one step, under a prefix (ML-Dash's
    ``run.metrics("train")``). Fields may differ from one point to the next."""

    def __init__(self, run: Run, prefix: str) -> None:
        self.run = run
        self.prefix = prefix

    def log(self, step: Any = None, timestamp: Any = None, **fields: Any) -> None:
        """Log ``prefix/<field>`` for every field at ``step`` (default: one more than the
        last step logged under this prefix in this run, starting at 0).

        Raises:
            ValidationError: a field breaks a rule (then none of this point is logged).
            RunEndedError: the run has ended.
        """
        if not fields:
            raise ValidationError("fields", "at least one", "a point needs at least one field")
        steps = self.run._next_steps
        at = steps.get(self.prefix, 0) if step is None else check.step_value(step, self.run.run_id)
        self.run.log_metrics({f"{self.prefix}/{k}": v for k, v in fields.items()}, at, timestamp)
        steps[self.prefix] = at + 1

    append = log
    """ML-Dash's other name for :meth:`log` (``metrics("loss").append(value=0.5, epoch=1)``)."""

    def read(self, start_index: int = 0, limit: int = 1000) -> dict[str, Any]:
        """ML-Dash style: the points ``start_index`` to ``start_index + limit - 1`` in logging
        order, as ``{"data": [{"index": i, "data": {field: value}}, ...], "total": n}``; it
        sees everything logged so far (this process's points are flushed first).

        Raises:
            ValidationError: ``start_index`` or ``limit`` is negative or not an int.
            ReadUnavailableError: the query component is not installed.
        """
        first = _count(start_index, "start_index", self.run.run_id)
        size = _count(limit, "limit", self.run.run_id)
        points = self._points()
        chosen = points[first : first + size]
        return {
            "data": [{"index": first + i, "data": p["data"]} for i, p in enumerate(chosen)],
            "total": len(points),
        }

    def stats(self) -> dict[str, Any]:
        """ML-Dash style: ``{"name", "totalDataPoints", "fields"}`` of this metric.

        Raises:
            ReadUnavailableError: the query component is not installed.
        """
        points = self._points()
        fields = sorted({f for p in points for f in p["data"]})
        return {"name": self.prefix, "totalDataPoints": len(points), "fields": fields}

    def _points(self) -> list[dict[str, Any]]:
        from runstream.tracking.reads import grouped_points

        return grouped_points(self.run.client.reader(), self.run.run_id, self.prefix)


class Params:
    """ML-Dash style parameter setter: ``run.params.set(lr=0.1, model={"depth": 4})``."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def set(self, **params: Any) -> None:
        """Log ``params``, nested mappings flattened to dotted keys.

        Raises:
            ValidationError: a key or value breaks its rule.
            RunEndedError: the run has ended.
        """
        self.run.log_params(params)


def _count(value: Any, field: str, run_id: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(field, "an int >= 0", f"{field} {value!r} is not an int >= 0", run_id)
    return value


def _files() -> Any:
    """The artifact call helpers, imported on first use (they pull in the store layout and
    fsspec, which a run that logs no file never needs)."""
    from runstream.tracking import artifact_files

    return artifact_files


def _named_item(item: Any, field: str, run_id: str) -> tuple[str, Any, dict[str, Any]]:
    if isinstance(item, Mapping):
        data = dict(item)
    elif hasattr(item, "name") and hasattr(item, "value"):
        data = {
            k: getattr(item, k) for k in ("name", "value", "step", "timestamp") if hasattr(item, k)
        }
    else:
        raise ValidationError(
            field, "name/value items", f"item {item!r} has no 'name' and 'value'", run_id
        )
    if "name" not in data or "value" not in data:
        raise ValidationError(
            field, "name/value items", f"item {item!r} has no 'name' and 'value'", run_id
        )
    name = data.pop("name")
    value = data.pop("value")
    return name, value, {k: v for k, v in data.items() if v is not None}


def _as_mapping(
    values: Mapping[str, Any] | Iterable[Any], field: str, run_id: str
) -> dict[str, Any]:
    if isinstance(values, Mapping):
        return dict(values)
    if isinstance(values, str):
        return {values: ""}
    result: dict[str, Any] = {}
    for item in values:
        if isinstance(item, str):
            result[item] = ""
        else:
            name, value, _ = _named_item(item, field, run_id)
            result[name] = value
    return result


def _run_update(name: str | None, collection: str | None, run_id: str | None) -> RunUpdated:
    return RunUpdated(
        None if name is None else check.text_value(name, "run_name", check.MAX_KEY_LENGTH, run_id),
        None
        if collection is None
        else check.text_value(collection, "collection", check.MAX_KEY_LENGTH, run_id),
    )


def _only(column: Sequence[Any], kind: type) -> bool:
    """True when every item of ``column`` is exactly of type ``kind`` (no subclass: a bool is
    not an int here), counted in C: ``list.count`` compares by identity first, so each item
    costs a pointer comparison (half the cost of collecting the types in a set)."""
    return list(map(type, column)).count(kind) == len(column)
