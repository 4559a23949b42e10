"""Fixtures of the MLflow plugin's tests: MLflow pointed at an embedded Runstream of the test's
own (``runstream+file://`` in a tmp folder, its store beside it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from runstream.core.settings import Settings


@pytest.fixture
def tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """MLflow's tracking URI set to a fresh embedded Runstream (and RUNSTREAM_STORE to its
    store); the active run, if a test left one, is ended afterwards."""
    uri = f"runstream+file://{tmp_path / 'log'}"
    monkeypatch.setenv("RUNSTREAM_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_id="0")  # not the experiment an earlier test set
    yield uri
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


@pytest.fixture
def client(tracking_uri: str) -> MlflowClient:
    """MLflow's own client over the test's Runstream."""
    return MlflowClient(tracking_uri)


@pytest.fixture
def runstream_settings(tmp_path: Path) -> Settings:
    """Runstream's settings of the same log and store (for reading back with the query layer)."""
    return Settings.resolve(f"file://{tmp_path / 'log'}", str(tmp_path / "store"), environ={})
