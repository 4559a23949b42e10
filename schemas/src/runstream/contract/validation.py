"""The rules a decoded batch must keep before it is applied: the one check every reader of
the event log (processor, compactor, replay, the query tail) makes at its edge. A batch that
breaks one goes to the dead-letter topic instead of into any projection
(:mod:`runstream.contract.deadletter`).

The rules are the SDK's own limits (:mod:`runstream.contract.limits`), so a message produced
straight to the topic cannot hold what the SDK would not have sent, and every identity,
value and path a reader derives from an accepted batch is in range.
"""

from __future__ import annotations

from collections.abc import Sequence

from runstream.contract.events import (
    RUN_STATUSES,
    ArtifactLogged,
    EventBatch,
    ExperimentCreated,
    ExperimentRenamed,
    Heartbeat,
    LoggedModelCreated,
    LoggedModelFinalized,
    LogLine,
    MetricLogged,
    ParamLogged,
    RunEnded,
    RunStarted,
    RunUpdated,
    TagSet,
)
from runstream.contract.exceptions import (
    InvalidEventError,
    UnsafeArtifactPathError,
    UnsafeRunIdError,
)
from runstream.contract.identifiers import check_artifact_path, check_run_id
from runstream.contract.limits import (
    KEY_CHARACTERS,
    KEY_PATTERN,
    LOG_LEVELS,
    MAX_KEY_LENGTH,
    MAX_PARAM_KEY_LENGTH,
    MAX_PARAM_LENGTH,
    MAX_SEQUENCE,
    MAX_TAG_LENGTH,
)
from runstream.contract.state import LABELS_NAMESPACE, RUNNING

NAMESPACES = ("tags", LABELS_NAMESPACE)
MAX_PRODUCER_ID_LENGTH = 256
"""ASCII characters of a producer id (it is in every register of a run state message)."""
MAX_TEXT_LENGTH = 100_000
"""Characters of any other text of an event (a log line, a source field, a URI)."""


def validate_batch(
    batch: EventBatch,
    key: bytes | None = None,
    column_keys: Sequence[str] = (),
    column_points: int = 0,
) -> EventBatch:
    """Return ``batch`` if it keeps the contract: a safe run id equal to the message ``key``
    (when given), a producer id, sequences within 0..2**63-1 (its last event included),
    consistent metric columns, keys and values within the SDK's limits, an end status other
    than RUNNING, a known tag namespace, and artifact paths that stay in their run.

    ``column_keys`` and ``column_points`` describe metric columns decoded apart from the
    batch (the compactor's numpy path, whose ``batch.metrics`` is empty).

    Raises:
        InvalidEventError: a rule is broken; ``reason`` is ``run_id``, ``key``, ``producer``,
            ``sequence``, ``columns``, ``metric_key``, ``param``, ``tag``, ``text``,
            ``status``, ``namespace``, ``artifact_path`` or ``heartbeat``.
    """
    try:
        check_run_id(batch.run_id)
    except UnsafeRunIdError as error:
        raise InvalidEventError(str(error), "run_id") from error
    if key is not None and key != batch.run_id.encode():
        raise InvalidEventError(
            f"message key {key[:80]!r} is not the batch's run_id {batch.run_id!r}", "key"
        )
    producer = batch.producer.id
    if not producer or len(producer) > MAX_PRODUCER_ID_LENGTH or not producer.isascii():
        raise InvalidEventError(
            f"run {batch.run_id}: producer id of {len(producer)} characters (1 to "
            f"{MAX_PRODUCER_ID_LENGTH} ASCII characters)",
            "producer",
        )
    _check_sequences(batch, column_points)
    _check_columns(batch)
    for name in (*batch.metrics.keys, *column_keys):
        _check_key(batch.run_id, name, "metric_key")
    for event in batch.events:
        payload = event.payload
        _check_payload(batch.run_id, payload)
    return batch


def _check_sequences(batch: EventBatch, column_points: int) -> None:
    last = batch.first_sequence + len(batch) + column_points - 1
    if batch.first_sequence < 0 or last > MAX_SEQUENCE:
        raise InvalidEventError(
            f"run {batch.run_id}: sequences {batch.first_sequence}..{last} leave "
            f"0..{MAX_SEQUENCE} (2**63-1)",
            "sequence",
        )


def _check_key(run_id: str, key: str, reason: str, limit: int = MAX_KEY_LENGTH) -> None:
    if not key or len(key) > limit or not KEY_PATTERN.fullmatch(key):
        raise InvalidEventError(
            f"run {run_id}: {reason} {key[:40]!r} ({len(key)} characters) is not 1 to "
            f"{limit} characters of {KEY_CHARACTERS}",
            reason,
        )


def _check_text(run_id: str, field: str, text: str | None, limit: int, reason: str) -> None:
    if text is not None and len(text) > limit:
        raise InvalidEventError(
            f"run {run_id}: {field} has {len(text)} characters, more than {limit}", reason
        )


def _check_payload(run_id: str, payload: object) -> None:
    if isinstance(payload, MetricLogged):
        _check_key(run_id, payload.key, "metric_key")
    elif isinstance(payload, ParamLogged):
        _check_key(run_id, payload.key, "param", MAX_PARAM_KEY_LENGTH)
        _check_text(run_id, f"param {payload.key!r}", payload.value, MAX_PARAM_LENGTH, "param")
    elif isinstance(payload, TagSet):
        _check_key(run_id, payload.key, "tag")
        _check_text(run_id, f"tag {payload.key!r}", payload.value, MAX_TAG_LENGTH, "tag")
        if payload.namespace not in NAMESPACES:
            raise InvalidEventError(
                f"run {run_id}: TagSet.namespace {payload.namespace!r} is not one of "
                f"{', '.join(NAMESPACES)}",
                "namespace",
            )
    elif isinstance(payload, RunStarted):
        for tag, value in payload.tags.items():
            _check_key(run_id, tag, "tag")
            _check_text(run_id, f"tag {tag!r}", value, MAX_TAG_LENGTH, "tag")
        _check_names(run_id, payload.name, payload.collection)
        for field in ("source_file", "command", "git_commit", "python_version"):
            _check_text(run_id, field, getattr(payload, field), MAX_TEXT_LENGTH, "text")
    elif isinstance(payload, RunUpdated):
        _check_names(run_id, payload.name, payload.collection)
    elif isinstance(payload, ExperimentCreated | ExperimentRenamed):
        _check_names(run_id, payload.name, None)
    elif isinstance(payload, LoggedModelCreated):
        _check_names(run_id, payload.name, payload.experiment_id)
        _check_text(run_id, "source_run_id", payload.source_run_id, MAX_KEY_LENGTH, "text")
        _check_text(run_id, "model_type", payload.model_type, MAX_KEY_LENGTH, "text")
    elif isinstance(payload, LoggedModelFinalized):
        _check_text(run_id, "model status", payload.status, MAX_KEY_LENGTH, "text")
    elif isinstance(payload, LogLine):
        _check_text(run_id, "log message", payload.message, MAX_TEXT_LENGTH, "text")
        if payload.level not in LOG_LEVELS:
            raise InvalidEventError(
                f"run {run_id}: LogLine.level {payload.level[:40]!r} is not one of "
                f"{', '.join(LOG_LEVELS)}",
                "level",
            )
    elif isinstance(payload, RunEnded) and (
        payload.status == RUNNING or payload.status not in RUN_STATUSES
    ):
        raise InvalidEventError(
            f"run {run_id}: RunEnded.status {payload.status[:40]!r} is not an end status",
            "status",
        )
    elif isinstance(payload, ArtifactLogged):
        try:
            check_artifact_path(payload.path)
        except UnsafeArtifactPathError as error:
            raise InvalidEventError(f"run {run_id}: {error}", "artifact_path") from error
        _check_text(run_id, "artifact uri", payload.uri, MAX_TEXT_LENGTH, "text")
    elif isinstance(payload, Heartbeat) and payload.interval_ms < 0:
        raise InvalidEventError(
            f"run {run_id}: Heartbeat.interval_ms {payload.interval_ms} is negative", "heartbeat"
        )


def _check_names(run_id: str, name: str | None, collection: str | None) -> None:
    _check_text(run_id, "run name", name, MAX_KEY_LENGTH, "text")
    _check_text(run_id, "collection", collection, MAX_KEY_LENGTH, "text")


def _check_columns(batch: EventBatch) -> None:
    columns = batch.metrics
    lengths = {
        "key_index": len(columns.key_index),
        "steps": len(columns.steps),
        "values": len(columns.values),
        "timestamps": len(columns.timestamps),
    }
    if len(set(lengths.values())) > 1:
        raise InvalidEventError(
            f"run {batch.run_id}: metric columns differ in length: {lengths}", "columns"
        )
    if columns.key_index and (
        min(columns.key_index) < 0 or max(columns.key_index) >= len(columns.keys)
    ):
        raise InvalidEventError(
            f"run {batch.run_id}: metric key_index outside 0..{len(columns.keys) - 1}",
            "columns",
        )
