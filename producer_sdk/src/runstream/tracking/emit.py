"""Events as JSON lines (for pipeline operators): one object per line, validated by the
same rules as the SDK calls.

Every line has ``run_id`` and ``type``; the other fields by type::

    metric       key, value, step?, timestamp? (ms)
    param        key, value
    tag | label  key, value
    log          message, level?, metadata?
    run_started  name?, collection?, tags?
    run_ended    status? (FINISHED)
    run_updated  name?, collection?
    run_deleted  reason?
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from runstream.tracking.client import Client
from runstream.tracking.exceptions import ValidationError
from runstream.tracking.run import Run

_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # type: (required, optional)
    "metric": (frozenset({"key", "value"}), frozenset({"step", "timestamp"})),
    "param": (frozenset({"key", "value"}), frozenset()),
    "tag": (frozenset({"key", "value"}), frozenset()),
    "label": (frozenset({"key", "value"}), frozenset()),
    "log": (frozenset({"message"}), frozenset({"level", "metadata"})),
    "run_started": (frozenset(), frozenset({"name", "collection", "tags"})),
    "run_ended": (frozenset(), frozenset({"status"})),
    "run_updated": (frozenset(), frozenset({"name", "collection"})),
    "run_deleted": (frozenset(), frozenset({"reason"})),
}
EVENT_TYPES = tuple(_FIELDS)


class LineEmitter:
    """Applies JSON lines to runs of one client, keeping one open handle per run id."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._runs: dict[str, Run] = {}

    def emit(self, line: str) -> None:
        """Validate one JSON line and queue its event.

        Raises:
            ValidationError: the line is not a JSON object, lacks or has unknown fields, or a
                value breaks its rule (the message names the field).
        """
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValidationError("line", "one JSON object", f"not JSON: {error}") from error
        if not isinstance(data, dict):
            raise ValidationError(
                "line", "one JSON object", f"a {type(data).__name__}, not an object"
            )
        event_type = data.pop("type", None)
        run_id = data.pop("run_id", None)
        if event_type not in _FIELDS:
            raise ValidationError(
                "type", f"one of {', '.join(EVENT_TYPES)}", f"type {event_type!r} is unknown"
            )
        if run_id is None:
            raise ValidationError("run_id", "required", "run_id is missing")
        required, optional = _FIELDS[event_type]
        missing = sorted(required - data.keys())
        unknown = sorted(data.keys() - required - optional)
        if missing:
            raise ValidationError(missing[0], "required", f"{event_type} needs {missing}")
        if unknown:
            raise ValidationError(
                unknown[0], "known fields", f"{event_type} has unknown fields {unknown}"
            )
        _HANDLERS[event_type](self, str(run_id) if isinstance(run_id, str) else run_id, data)

    def _handle(self, run_id: Any) -> Run:
        run = self._runs.get(run_id) if isinstance(run_id, str) else None
        if run is None:
            run = self.client.attach(run_id)
            self._runs[run.run_id] = run
        return run

    def _ending(self, run_id: Any) -> Run:
        return self.client.attach(run_id)


def _metric(emitter: LineEmitter, run_id: Any, data: Mapping[str, Any]) -> None:
    emitter._handle(run_id).log_metric(
        data["key"], data["value"], data.get("step"), data.get("timestamp")
    )


def _param(emitter: LineEmitter, run_id: Any, data: Mapping[str, Any]) -> None:
    emitter._handle(run_id).log_param(data["key"], data["value"])


def _tag(emitter: LineEmitter, run_id: Any, data: Mapping[str, Any]) -> None:
    emitter._handle(run_id).set_tag(data["key"], data["value"])


def _label(emitter: LineEmitter, run_id: Any, data: Mapping[str, Any]) -> None:
    emitter._handle(run_id).set_labels({data["key"]: data["value"]})


def _log(emitter: LineEmitter, run_id: Any, data: Mapping[str, Any]) -> None:
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise ValidationError(
            "metadata", "an object", f"metadata {metadata!r} is not an object", run_id
        )
    emitter._handle(run_id).log(data["message"], data.get("level", "info"), metadata)


def _run_started(emitter: LineEmitter, run_id: Any, data: Mapping[str, Any]) -> None:
    tags = data.get("tags")
    if tags is not None and not isinstance(tags, dict):
        raise ValidationError("tags", "an object", f"tags {tags!r} is not an object", run_id)
    run = emitter.client.start_run(
        data.get("name"), data.get("collection"), run_id, tags, capture_code=False, heartbeat=False
    )
    run._queue.closed = True  # this handle logs nothing more; later lines use another


def _run_ended(emitter: LineEmitter, run_id: Any, data: Mapping[str, Any]) -> None:
    emitter._ending(run_id).end(data.get("status", "FINISHED"))


def _run_updated(emitter: LineEmitter, run_id: Any, data: Mapping[str, Any]) -> None:
    emitter.client.update_run_info(run_id, data.get("name"), collection=data.get("collection"))


def _run_deleted(emitter: LineEmitter, run_id: Any, data: Mapping[str, Any]) -> None:
    emitter._ending(run_id).delete(data.get("reason"))


_HANDLERS: dict[str, Callable[[LineEmitter, Any, Mapping[str, Any]], None]] = {
    "metric": _metric,
    "param": _param,
    "tag": _tag,
    "label": _label,
    "log": _log,
    "run_started": _run_started,
    "run_ended": _run_ended,
    "run_updated": _run_updated,
    "run_deleted": _run_deleted,
}
