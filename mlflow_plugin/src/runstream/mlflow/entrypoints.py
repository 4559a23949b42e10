"""The targets of MLflow's entry points: small factories that import the plugins when called.

MLflow loads its entry points while ``import mlflow`` is still initialising
``mlflow.tracking``: a module importing MLflow's stores at top level would fail with a
circular import (MLflow then only warns and skips the scheme). Nothing here imports MLflow
or the plugin modules until MLflow builds a store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runstream.mlflow.artifacts import RunstreamArtifactRepository
    from runstream.mlflow.registry import NotServedRegistry
    from runstream.mlflow.store import RunstreamStore


def tracking_store(store_uri: str, artifact_uri: str | None = None) -> RunstreamStore:
    """The tracking store of ``runstream+file://…`` or ``runstream+kafka://…`` (one per URI and
    process: MLflow caches it).

    Raises:
        MlflowException: the URI is not a Runstream URI or its settings are malformed.
    """
    from runstream.mlflow.store import RunstreamStore

    return RunstreamStore(store_uri, artifact_uri)


def artifact_repository(
    artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None
) -> RunstreamArtifactRepository:
    """The artifact repository of a ``runstream-artifacts:`` URI (a run's or a logged model's).

    Raises:
        MlflowException: the URI does not name a run or a logged model.
    """
    from runstream.mlflow.artifacts import RunstreamArtifactRepository

    return RunstreamArtifactRepository(artifact_uri, tracking_uri, registry_uri)


def registry_store(store_uri: str, tracking_uri: str | None = None) -> NotServedRegistry:
    """MLflow's model registry is not served over Runstream URIs: a store whose every call
    raises MlflowException (FEATURE_DISABLED) naming the alternatives (``MLFLOW_REGISTRY_URI``,
    or loading by ``runs:/`` and ``models:/<model_id>``)."""
    from runstream.mlflow.registry import NotServedRegistry

    return NotServedRegistry(store_uri)
