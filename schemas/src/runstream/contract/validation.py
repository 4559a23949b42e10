"""The rules a decoded batch must keep before it is applied; a batch that breaks one goes
to the dead-letter topic instead of into the state."""

from __future__ import annotations

from runstream.contract.events import RUN_STATUSES, ArtifactLogged, EventBatch, RunEnded, TagSet
from runstream.contract.exceptions import (
    InvalidEventError,
    UnsafeArtifactPathError,
    UnsafeRunIdError,
)
from runstream.contract.identifiers import check_artifact_path, check_run_id
from runstream.contract.state import LABELS_NAMESPACE, RUNNING

NAMESPACES = ("tags", LABELS_NAMESPACE)


def validate_batch(batch: EventBatch, key: bytes | None = None) -> EventBatch:
    """Return ``batch`` if it keeps the contract: a safe run id equal to the message ``key``
    (when given), a non-negative first sequence, consistent metric columns, an end status
    other than RUNNING, a known tag namespace, and artifact paths that stay in their run.

    Raises:
        InvalidEventError: a rule is broken; ``reason`` is ``run_id``, ``key``, ``sequence``,
            ``columns``, ``status``, ``namespace`` or ``artifact_path``.
    """
    try:
        check_run_id(batch.run_id)
    except UnsafeRunIdError as error:
        raise InvalidEventError(str(error), "run_id") from error
    if key is not None and key != batch.run_id.encode():
        raise InvalidEventError(
            f"message key {key!r} is not the batch's run_id {batch.run_id!r}", "key"
        )
    if batch.first_sequence < 0:
        raise InvalidEventError(
            f"run {batch.run_id}: first_sequence {batch.first_sequence} is negative", "sequence"
        )
    _check_columns(batch)
    for event in batch.events:
        payload = event.payload
        if isinstance(payload, RunEnded) and (
            payload.status == RUNNING or payload.status not in RUN_STATUSES
        ):
            raise InvalidEventError(
                f"run {batch.run_id}: RunEnded.status {payload.status!r} is not an end status",
                "status",
            )
        if isinstance(payload, TagSet) and payload.namespace not in NAMESPACES:
            raise InvalidEventError(
                f"run {batch.run_id}: TagSet.namespace {payload.namespace!r} is not one of "
                f"{', '.join(NAMESPACES)}",
                "namespace",
            )
        if isinstance(payload, ArtifactLogged):
            try:
                check_artifact_path(payload.path)
            except UnsafeArtifactPathError as error:
                raise InvalidEventError(f"run {batch.run_id}: {error}", "artifact_path") from error
    return batch


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
