"""The fluent API (MLflow/Submarine style): module functions over an explicit Client.

The client in use and the active run are held in context variables, not module globals:
each thread and each asyncio task sees its own active run (a new thread starts with none;
pass a :class:`Run` to it, or use ``contextvars.copy_context``). With no active run, a call
joins the run named by ``RUNSTREAM_RUN_ID`` when it is set (a job's run, as Submarine's calls
expect), and raises NoActiveRunError otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from runstream.core.settings import TrackingUri
from runstream.tracking import validation as check
from runstream.tracking.client import Client
from runstream.tracking.exceptions import NoActiveRunError, ValidationError
from runstream.tracking.run import Run

_tracking_uri: ContextVar[str | None] = ContextVar("runstream_tracking_uri", default=None)
_client: ContextVar[Client | None] = ContextVar("runstream_client", default=None)
_active_run: ContextVar[Run | None] = ContextVar("runstream_active_run", default=None)
_next_run_info: ContextVar[dict[str, Any] | None] = ContextVar(
    "runstream_next_run_info", default=None
)
T = TypeVar("T")


def set_tracking_uri(uri: str) -> None:
    """Log to ``uri`` (``kafka://``, ``file://`` or ``noop://``) from now on in this context.

    Raises:
        ConfigError: the URI is malformed.
    """
    TrackingUri.parse(uri)
    _tracking_uri.set(uri)
    _client.set(None)


def get_tracking_uri() -> str:
    """The tracking URI in use: the one set, else ``RUNSTREAM_TRACKING_URI``, else the
    embedded default.

    Raises:
        ConfigError: the environment holds a malformed setting.
    """
    return get_client().tracking_uri


def get_client() -> Client:
    """The client of this context (created on first use).

    Raises:
        ConfigError: the tracking URI or an environment setting is malformed.
    """
    client = _client.get()
    if client is None:
        client = Client(_tracking_uri.get())
        _client.set(client)
    return client


def start_run(
    run_name: str | None = None,
    collection: str | None = None,
    run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    *,
    labels: Mapping[str, Any] | None = None,
    run_collection_name: str | None = None,
) -> Run:
    """Start a run and make it the active one; use as ``with start_run(...) as run:`` to end
    it (FAILED if an exception escapes) and restore the previously active run.
    ``run_collection_name`` is SAP's name for ``collection``. Without a name the run is
    named by its id; without a collection it goes to the one named after its source file.
    What :func:`update_run_info` set before any run was started applies to this run.

    Raises:
        ValidationError: the run id, name or a tag breaks its rule.
    """
    pending = _next_run_info.get() or {}
    _next_run_info.set(None)
    if collection is None:
        collection = run_collection_name
    run = get_client().start_run(
        pending.get("run_name") if run_name is None else run_name,
        pending.get("collection") if collection is None else collection,
        run_id,
        {**pending.get("tags", {}), **(tags or {})},
        labels=labels,
    )
    return activate(run)


def init(
    name: str | None = None,
    project: str | None = None,
    tags: str | Iterable[str] | Mapping[str, Any] | None = None,
    description: str | None = None,
    run_uuid: str | None = None,
) -> Run:
    """Polyaxon style: start a run named ``name`` in collection ``project`` and make it the
    active one (``tracking.init(); tracking.log_metrics(step=1, loss=0.3)``); ``tags`` as
    Polyaxon gives them (a string or list: tags with empty values), ``description`` as the
    tag ``description``, ``run_uuid`` to join a run.

    Raises:
        ValidationError: the run id, name, a tag or the description breaks its rule.
    """
    run = start_run(run_name=name, collection=project, run_id=run_uuid)
    if tags:
        run.log_tags(tags)
    if description is not None:
        run.set_tag("description", description)
    return run


def activate(run: Run) -> Run:
    """Make ``run`` the active run of this context until it ends (then the previously active
    run is again); returns it."""
    token = _active_run.set(run)

    def restore() -> None:
        try:
            _active_run.reset(token)
        except ValueError:  # ended in another context
            if _active_run.get() is run:
                _active_run.set(None)

    run._on_exit = restore  # type: ignore[attr-defined]
    return run


def active_run() -> Run | None:
    """The active run of this context, or None."""
    return _active_run.get()


JOB_RUN_ID = "RUNSTREAM_RUN_ID"
"""The environment variable naming the run of a job: with it set, a fluent call made with no
active run joins that run (Submarine's calls name no run: its job launcher sets the id)."""


def _run() -> Run:
    run = _active_run.get()
    if run is None:
        return _job_run()
    return run


def _job_run() -> Run:
    """The run named by ``RUNSTREAM_RUN_ID``, started (joined) in this context.

    Raises:
        NoActiveRunError: the variable is not set.
        ValidationError: its value is not a safe run id.
    """
    run_id = os.environ.get(JOB_RUN_ID)
    if not run_id:
        raise NoActiveRunError(
            f"no active run in this context: call start_run() first (or set {JOB_RUN_ID})"
        )
    return start_run(run_id=run_id)


def end_run(status: str = "FINISHED") -> Run | None:
    """End the active run (FINISHED, FAILED or KILLED), restore the previous one and return
    the ended run (SAP logs to it later with ``run=``); nothing happens when no run is active.

    Raises:
        ValidationError: the status is not one of those.
    """
    run = _active_run.get()
    if run is None:
        return None
    run.end(status)
    run.client._left_context(run)
    return run


def _on(run: Any, call: Callable[[Run], T]) -> T:
    """``call`` on ``run`` (a :class:`Run`, a run read back, or a run id), even an ended one
    (then on a handle of its own); on the active run when ``run`` is None.

    Raises:
        NoActiveRunError: ``run`` is None and no run is active.
        ValidationError: the run id is not a safe path segment.
    """
    if run is None:
        return call(_run())
    if isinstance(run, Run):
        if not run._ended:
            return call(run)
        client: Any = run.client
    else:
        client = get_client()
    with client.late(_run_id_of(run)) as handle:
        return call(handle)


def _run_id_of(run: Any) -> str:
    run_id = run if isinstance(run, str) else getattr(run, "run_id", None)
    if not isinstance(run_id, str):
        raise ValidationError("run", "a run or a run id", f"{run!r} is neither a run nor a run id")
    return run_id


def log_metric(
    key: Any = None,
    value: Any = None,
    step: Any = None,
    timestamp: Any = None,
    *,
    name: Any = None,
    run: Any = None,
) -> None:
    """Log one metric point to the active run (see :meth:`Run.log_metric`). SAP's form:
    ``log_metric(name=, value=, run=None)``; ``run=`` logs to that run, even after its end.

    Raises:
        NoActiveRunError: no run is active (and no ``run`` given).
        ValidationError: the key, value, step or timestamp breaks its rule.
    """
    if name is None and run is None:
        _run().log_metric(key, value, step, timestamp)
    else:
        _sap_log_metric(key, value, step, timestamp, name, run)


def _sap_log_metric(key: Any, value: Any, step: Any, timestamp: Any, name: Any, run: Any) -> None:
    if name is not None and key is not None:
        raise ValidationError("name", "key or name, not both", "give the metric's key or name")
    metric = key if name is None else name
    _on(run, lambda handle: handle.log_metric(metric, value, step, timestamp))


def log_metrics(
    metrics: Mapping[str, Any] | Iterable[Any] | None = None,
    step: Any = None,
    timestamp: Any = None,
    *,
    run: Any = None,
    **named: Any,
) -> None:
    """Log several points to the active run, or to ``run`` even after its end (see
    :meth:`Run.log_metrics`: a mapping, SAP's list of ``{"name", "value"}`` mappings, or
    Polyaxon's keyword arguments; ``run`` is never a metric name).

    Raises:
        NoActiveRunError: no run is active (and no ``run`` given).
        ValidationError: a point breaks a rule (none of the call is logged).
    """
    _on(run, lambda handle: handle.log_metrics(metrics, step, timestamp, **named))


def log_param(key: str, value: Any) -> None:
    """Log one parameter to the active run.

    Raises:
        NoActiveRunError: no run is active.
        ValidationError: the key or value breaks its rule.
    """
    _run().log_param(key, value)


def log_params(params: Mapping[str, Any] | None = None, **named: Any) -> None:
    """Log parameters, a mapping or keyword arguments (nested mappings flattened to dotted
    keys), to the active run.

    Raises:
        NoActiveRunError: no run is active.
        ValidationError: a key or value breaks its rule.
    """
    _run().log_params(params, **named)


def log_parameters(parameters: Mapping[str, Any] | Iterable[Any], run: Any = None) -> None:
    """SAP style :func:`log_params`: a mapping or ``{"name", "value"}`` items, values
    converted to strings, names of at most 250 characters; to ``run`` when given.

    Raises:
        NoActiveRunError: no run is active (and no ``run`` given).
        ValidationError: a key or value breaks its rule (none of the call is logged).
    """
    _on(run, lambda handle: handle.log_parameters(parameters))


def set_tag(key: str, value: Any) -> None:
    """Set one tag on the active run.

    Raises:
        NoActiveRunError: no run is active.
        ValidationError: the key or value breaks its rule.
    """
    _run().set_tag(key, value)


def set_tags(tags: Mapping[str, Any] | Iterable[Any], run: Any = None) -> None:
    """Set tags on the active run, or on ``run`` (a mapping or ``{"name", "value"}`` items).

    Raises:
        NoActiveRunError: no run is active (and no ``run`` given).
        ValidationError: a key or value breaks its rule.
    """
    _on(run, lambda handle: handle.set_tags(tags))


def log_tags(tags: str | Iterable[str] | Mapping[str, Any]) -> None:
    """Polyaxon style tags on the active run (see :meth:`Run.log_tags`).

    Raises:
        NoActiveRunError: no run is active.
        ValidationError: a tag breaks its rule.
    """
    _run().log_tags(tags)


def set_labels(labels: Mapping[str, Any] | Iterable[Any], run: Any = None) -> None:
    """Set labels on the active run, or on ``run``.

    Raises:
        NoActiveRunError: no run is active (and no ``run`` given).
        ValidationError: a key or value breaks its rule.
    """
    _on(run, lambda handle: handle.set_labels(labels))


def log(message: str, level: str = "info", metadata: Mapping[str, Any] | None = None) -> None:
    """Log a line of text to the active run.

    Raises:
        NoActiveRunError: no run is active.
        ValidationError: the message, level or metadata breaks its rule.
    """
    _run().log(message, level, metadata)


def log_artifact(local_path: str | Path, artifact_path: str | None = None) -> None:
    """Store a local file or folder as artifacts of the active run (see
    :meth:`Run.log_artifact`).

    Raises:
        NoActiveRunError: no run is active.
        ArtifactError: the local path does not exist or cannot be read.
        ValidationError: an artifact path would leave the run's artifacts.
    """
    _run().log_artifact(local_path, artifact_path)


def log_text(text: str, artifact_file: str) -> None:
    """Store ``text`` as artifact ``artifact_file`` of the active run.

    Raises:
        NoActiveRunError: no run is active.
        ValidationError: ``text`` is not a string, or the path is unsafe.
    """
    _run().log_text(text, artifact_file)


def log_dict(obj: Any, artifact_file: str) -> None:
    """Store ``obj`` as JSON or YAML (by extension) in the active run.

    Raises:
        NoActiveRunError: no run is active.
        ValidationError: unknown extension, unserialisable object, or unsafe path.
        ArtifactError: YAML without PyYAML installed.
    """
    _run().log_dict(obj, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> None:
    """Store a matplotlib figure as an image artifact of the active run.

    Raises:
        NoActiveRunError: no run is active.
        ValidationError: unknown format, not a figure, or unsafe path.
        ArtifactError: the figure cannot be drawn.
    """
    _run().log_figure(figure, artifact_file)


def log_model(model: Any, name: str) -> None:
    """Save a model with its manifest as artifact folder ``name`` of the active run.

    Raises:
        NoActiveRunError: no run is active.
        ModelError: the model cannot be saved (nothing is stored).
        ValidationError: ``name`` is not a safe artifact path.
    """
    _run().log_model(model, name)


def load_model(run_id: str, name: str) -> Any:
    """Load the model logged as ``name`` in run ``run_id`` (see :meth:`Client.load_model`).

    Raises:
        RunNotFoundError: no visible run has this id.
        ArtifactNotFoundError: the run has no model ``name``.
        ModelError: the model cannot be loaded.
    """
    return get_client().load_model(run_id, name)


def flush(timeout: float = 30.0) -> None:
    """Return when everything logged so far through this context's client is acknowledged.

    Raises:
        FlushError: some events were not acknowledged in ``timeout``; it says how many.
    """
    get_client().flush(timeout)


def persist_run(timeout: float = 30.0) -> None:
    """SAP style :func:`flush`.

    Raises:
        FlushError: see :func:`flush`.
    """
    flush(timeout)


def delete_run(run_id: str, reason: str | None = None) -> None:
    """Mark run ``run_id`` deleted.

    Raises:
        ValidationError: the run id or reason breaks its rule.
    """
    get_client().delete_run(run_id, reason)


def update_run_info(
    run_name: str | None = None,
    run_collection_name: str | None = None,
    *,
    collection: str | None = None,
    run_id: str | None = None,
    run: Any = None,
    tags: Mapping[str, Any] | None = None,
) -> None:
    """Rename and/or move a run and set tags on it (SAP's argument names, or
    ``collection=``): ``run`` or ``run_id`` (even an ended run), else the active run, else
    the next run this context starts.

    Raises:
        ValidationError: the run id, a name or a tag breaks its rule.
    """
    target = run if run is not None else run_id
    if target is None and _active_run.get() is None:
        _remember_next(run_name, collection or run_collection_name, tags)
        return

    def update(handle: Run) -> None:
        handle.update_run_info(run_name, run_collection_name, collection=collection)
        if tags:
            handle.set_tags(tags)

    _on(target, update)


def _remember_next(
    run_name: str | None, collection: str | None, tags: Mapping[str, Any] | None
) -> None:
    check.text_value(run_name or "", "run_name", check.MAX_KEY_LENGTH)
    check.text_value(collection or "", "run_collection_name", check.MAX_KEY_LENGTH)
    check.string_map(tags, "tags", check.MAX_TAG_LENGTH)
    info = dict(_next_run_info.get() or {})
    if run_name is not None:
        info["run_name"] = run_name
    if collection is not None:
        info["collection"] = collection
    info["tags"] = {**info.get("tags", {}), **(tags or {})}
    _next_run_info.set(info)


# --- reads (SAP's get_runs, get_metrics_history; delete_runs) ------------------------------


def get_runs(
    run: Any = None, run_collection_name: str | None = None, tags: Mapping[str, Any] | None = None
) -> list[Any]:
    """The runs matching every argument given: ``run`` (a run, a run id, or a list of them),
    ``run_collection_name`` and ``tags`` (each must be set to that value); every visible run
    when none is given. Each has ``run_id``, ``name``, ``collection``, ``status``,
    ``params`` (with SAP's ``start`` and ``end``), ``metrics`` (latest value, min, max per
    key), ``tags`` (with ``runName``) and ``labels``. It sees everything logged so far, by
    this process (flushed first) or any other.

    Raises:
        ReadUnavailableError: the query component is not installed.
        ValidationError: ``run`` is not a run nor a run id.
        FlushError: this context's own events were not acknowledged in time.
    """
    run_ids = None if run is None else [_run_id_of(r) for r in _as_list(run)]
    return get_client().get_runs(run_ids, run_collection_name, tags)


def get_metrics_history(
    run: Any = None,
    metrics: Sequence[str] | str | None = None,
    *,
    start_step: int | None = None,
    end_step: int | None = None,
) -> list[dict[str, Any]]:
    """Every logged value of ``metrics`` (all the run's metrics when None) of ``run`` (a run,
    a run id, or a list of them; the active run when None), as
    ``[{"run_id", "name", "values": [{"step", "timestamp", "value"}, ...]}, ...]`` in step
    order. Nothing is capped; to page, pass ``start_step`` and ``end_step`` (inclusive) and
    continue from the last step seen plus one.

    Raises:
        NoActiveRunError: ``run`` is None and no run is active.
        ReadUnavailableError: the query component is not installed.
        RunNotFoundError: a run is not visible.
        FlushError: this context's own events were not acknowledged in time.
    """
    targets = [_run()] if run is None else _as_list(run)
    keys = [metrics] if isinstance(metrics, str) else metrics
    return get_client().get_metrics_history(
        [_run_id_of(r) for r in targets], keys, start_step=start_step, end_step=end_step
    )


def delete_runs(
    run: Any = None, run_collection_name: str | None = None, reason: str | None = None
) -> list[str]:
    """Delete ``run`` (a run, a run id, or a list of them), or every run of the collection
    ``run_collection_name``; return the ids deleted. Deleted runs are left out of reads.

    Raises:
        ValidationError: neither argument given, or a run id or the reason breaks its rule.
        ReadUnavailableError: the collection form needs the query component.
    """
    if run is None and run_collection_name is None:
        raise ValidationError(
            "run", "run or run_collection_name", "say which runs: run= or run_collection_name="
        )
    if run is not None:
        run_ids = [_run_id_of(r) for r in _as_list(run)]
    else:
        run_ids = [r.run_id for r in get_client().get_runs(None, run_collection_name)]
    for run_id in run_ids:
        delete_run(run_id, reason)
    return run_ids


def _as_list(run: Any) -> list[Any]:
    return list(run) if isinstance(run, list | tuple) else [run]
