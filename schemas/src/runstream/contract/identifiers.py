"""Rules for run ids and artifact paths: part of the contract, since both are paths in the store."""

from __future__ import annotations

import re

from runstream.contract.exceptions import UnsafeArtifactPathError, UnsafeRunIdError

RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-.]{0,127}")


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is one safe path segment.

    Raises:
        UnsafeRunIdError: it is empty, longer than 128 characters, does not start with a
            letter or digit, or has a character outside ``[A-Za-z0-9_-.]``.
    """
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise UnsafeRunIdError(
            f"run_id {run_id!r} is not a safe path segment: 1-128 characters of "
            "[A-Za-z0-9_-.], starting with a letter or digit"
        )
    return run_id


ARTIFACT_SEGMENT_PATTERN = re.compile(r"[A-Za-z0-9_\-.+=@,][A-Za-z0-9_\-.+=@, ]{0,254}")
MAX_ARTIFACT_PATH_LENGTH = 1024


def check_artifact_path(path: str) -> str:
    """Return ``path`` if it is a safe artifact path: relative, ``/``-separated segments of
    ``[A-Za-z0-9_-.+=@, ]`` (not starting with a space), none of them ``.`` or ``..``, at
    most 1024 characters. Such a path cannot escape its run's folder in any store.

    Raises:
        UnsafeArtifactPathError: the path is empty, absolute, too long, has an empty, ``.``
            or ``..`` segment, a backslash or another character outside the set.
    """
    if not isinstance(path, str) or not path:
        raise UnsafeArtifactPathError(f"artifact path {path!r} must be a non-empty string")
    if len(path) > MAX_ARTIFACT_PATH_LENGTH:
        raise UnsafeArtifactPathError(
            f"artifact path {path[:40]!r}... has {len(path)} characters, more than "
            f"{MAX_ARTIFACT_PATH_LENGTH}"
        )
    if path.startswith("/"):
        raise UnsafeArtifactPathError(f"artifact path {path!r} is absolute: give a relative path")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise UnsafeArtifactPathError(
                f"artifact path {path!r} has a {segment or 'empty'!r} segment: it must stay "
                "inside the run's artifacts (no '..', '.', '//' or trailing '/')"
            )
        if not ARTIFACT_SEGMENT_PATTERN.fullmatch(segment):
            raise UnsafeArtifactPathError(
                f"artifact path {path!r}: segment {segment!r} has a character outside "
                "[A-Za-z0-9_-.+=@, ] (or starts with a space)"
            )
    return path


EXPERIMENT_STREAM_PREFIX = "experiment-stream."
"""The stream id (the batch's ``run_id``, the Kafka key) of an experiment's events is this
prefix and the experiment id: never a run id of the SDK (uuid hex) nor of MLflow's plugin."""


def experiment_stream(experiment_id: str) -> str:
    """The stream id of experiment ``experiment_id``'s events.

    Raises:
        UnsafeRunIdError: the result is not a safe path segment.
    """
    return check_run_id(f"{EXPERIMENT_STREAM_PREFIX}{experiment_id}")


def is_experiment_stream(stream_id: str) -> bool:
    """True when ``stream_id`` carries an experiment's events, not a run's."""
    return stream_id.startswith(EXPERIMENT_STREAM_PREFIX)


MODEL_STREAM_PREFIX = "model-stream."
"""The stream id of an MLflow logged model's events (and artifacts) is this prefix and the
model id."""


def model_stream(model_id: str) -> str:
    """The stream id of logged model ``model_id``'s events.

    Raises:
        UnsafeRunIdError: the result is not a safe path segment.
    """
    return check_run_id(f"{MODEL_STREAM_PREFIX}{model_id}")


def is_entity_stream(stream_id: str) -> bool:
    """True when ``stream_id`` carries an experiment's or a logged model's events: never a
    run, so no reader lists it among runs."""
    return stream_id.startswith((EXPERIMENT_STREAM_PREFIX, MODEL_STREAM_PREFIX))
