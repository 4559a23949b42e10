"""Runstream's MLflow URIs: the tracking schemes and the artifact scheme, one place each."""

from __future__ import annotations

from urllib.parse import urlparse

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

TRACKING_SCHEMES = {"runstream+file": "file", "runstream+kafka": "kafka"}
"""MLflow tracking scheme -> Runstream tracking scheme."""
ARTIFACT_SCHEME = "runstream-artifacts"
"""The scheme of every artifact URI the store hands out (runs' and logged models')."""


def runstream_tracking_uri(store_uri: str) -> str:
    """``runstream+file:///p`` -> ``file:///p``; ``runstream+kafka://h:9092`` -> ``kafka://h:9092``.

    Raises:
        MlflowException: the scheme is not one of :data:`TRACKING_SCHEMES`.
    """
    scheme = urlparse(store_uri).scheme
    target = TRACKING_SCHEMES.get(scheme)
    if target is None:
        raise MlflowException(
            f"{store_uri!r} is not a Runstream tracking URI: use "
            "runstream+file:///path or runstream+kafka://host:9092[,host:9092]",
            INVALID_PARAMETER_VALUE,
        )
    return target + store_uri[len(scheme) :]


def run_artifact_uri(run_id: str) -> str:
    """The artifact URI of run ``run_id``."""
    return f"{ARTIFACT_SCHEME}:/runs/{run_id}"


def experiment_artifact_uri(experiment_id: str) -> str:
    """The artifact location of experiment ``experiment_id``."""
    return f"{ARTIFACT_SCHEME}:/experiments/{experiment_id}"


def model_artifact_uri(model_id: str) -> str:
    """The artifact location of logged model ``model_id``."""
    return f"{ARTIFACT_SCHEME}:/models/{model_id}"


def split_artifact_uri(uri: str) -> tuple[str, str, str]:
    """``(kind, id, path)`` of ``runstream-artifacts:/runs/<run_id>/<path>`` (kind ``runs``),
    ``…:/models/<model_id>/…`` or ``…:/experiments/<id>/…``; ``path`` may be empty.

    Raises:
        MlflowException: the URI is not of that form.
    """
    parsed = urlparse(uri)
    parts = parsed.path.strip("/").split("/", 2) if parsed.scheme == ARTIFACT_SCHEME else []
    if len(parts) < 2 or parts[0] not in ("runs", "models", "experiments") or not parts[1]:
        raise MlflowException(
            f"{uri!r} is not a Runstream artifact URI ({ARTIFACT_SCHEME}:/runs/<run_id>[/path])",
            INVALID_PARAMETER_VALUE,
        )
    return parts[0], parts[1], parts[2] if len(parts) > 2 else ""
