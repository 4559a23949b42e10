"""The fluent API (MLflow/Submarine style): module functions over an explicit Client.

The client in use and the active run are held in context variables, not module globals:
each thread and each asyncio task sees its own active run (a new thread starts with none;
pass a :class:`Run` to it, or use ``contextvars.copy_context``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from runstream.core.settings import TrackingUri
from runstream.tracking.client import Client
from runstream.tracking.exceptions import NoActiveRunError
from runstream.tracking.run import Run

_tracking_uri: ContextVar[str | None] = ContextVar("runstream_tracking_uri", default=None)
_client: ContextVar[Client | None] = ContextVar("runstream_client", default=None)
_active_run: ContextVar[Run | None] = ContextVar("runstream_active_run", default=None)


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
) -> Run:
    """Start a run and make it the active one; use as ``with start_run(...) as run:`` to end
    it (FAILED if an exception escapes) and restore the previously active run.

    Raises:
        ValidationError: the run id, name or a tag breaks its rule.
    """
    run = get_client().start_run(run_name, collection, run_id, tags, labels=labels)
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


def _run() -> Run:
    run = _active_run.get()
    if run is None:
        raise NoActiveRunError("no active run in this context: call start_run() first")
    return run


def end_run(status: str = "FINISHED") -> None:
    """End the active run (FINISHED, FAILED or KILLED) and restore the previous one; nothing
    happens when no run is active.

    Raises:
        ValidationError: the status is not one of those.
    """
    run = _active_run.get()
    if run is None:
        return
    run.end(status)
    run.client._left_context(run)


def log_metric(key: str, value: Any, step: Any = None, timestamp: Any = None) -> None:
    """Log one metric point to the active run (see :meth:`Run.log_metric`).

    Raises:
        NoActiveRunError: no run is active.
        ValidationError: the key, value, step or timestamp breaks its rule.
    """
    _run().log_metric(key, value, step, timestamp)


def log_metrics(
    metrics: Mapping[str, Any] | Iterable[Any] | None = None,
    step: Any = None,
    timestamp: Any = None,
    **named: Any,
) -> None:
    """Log several points to the active run (see :meth:`Run.log_metrics`).

    Raises:
        NoActiveRunError: no run is active.
        ValidationError: a point breaks a rule (none of the call is logged).
    """
    _run().log_metrics(metrics, step, timestamp, **named)


def log_param(key: str, value: Any) -> None:
    """Log one parameter to the active run.

    Raises:
        NoActiveRunError: no run is active.
        ValidationError: the key or value breaks its rule.
    """
    _run().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    """Log parameters (nested mappings flattened to dotted keys) to the active run.

    Raises:
        NoActiveRunError: no run is active.
        ValidationError: a key or value breaks its rule.
    """
    _run().log_params(params)


def log_parameters(parameters: Mapping[str, Any] | Iterable[Any]) -> None:
    """SAP style :func:`log_params`: a mapping or ``{"name", "value"}`` items.

    Raises:
        NoActiveRunError: no run is active.
        ValidationError: a key or value breaks its rule.
    """
    _run().log_parameters(parameters)


def set_tag(key: str, value: Any) -> None:
    """Set one tag on the active run.

    Raises:
        NoActiveRunError: no run is active.
        ValidationError: the key or value breaks its rule.
    """
    _run().set_tag(key, value)


def set_tags(tags: Mapping[str, Any] | Iterable[Any]) -> None:
    """Set tags on the active run (a mapping or ``{"name", "value"}`` items).

    Raises:
        NoActiveRunError: no run is active.
        ValidationError: a key or value breaks its rule.
    """
    _run().set_tags(tags)


def set_labels(labels: Mapping[str, Any] | Iterable[Any]) -> None:
    """Set labels on the active run.

    Raises:
        NoActiveRunError: no run is active.
        ValidationError: a key or value breaks its rule.
    """
    _run().set_labels(labels)


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
) -> None:
    """Rename and/or move a run: ``run_id``, or the active run (SAP's argument names, or
    ``collection=``).

    Raises:
        NoActiveRunError: no ``run_id`` given and no run is active.
        ValidationError: the run id or a name breaks its rule.
    """
    if run_id is None:
        _run().update_run_info(run_name, run_collection_name, collection=collection)
    else:
        get_client().update_run_info(run_id, run_name, run_collection_name, collection=collection)
