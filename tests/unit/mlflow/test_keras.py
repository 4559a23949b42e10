"""Keras 3 (JAX backend, CPU) with ``mlflow.keras.autolog()`` on Runstream: a tiny model's
``fit`` logs params, per-epoch metrics and its model, which loads back by ``models:/``."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before keras is imported: the light backend

import keras
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient


def test_keras_fit_with_autolog_logs_metrics_params_and_a_loadable_model(
    tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MLflow infers pip requirements by re-importing the model in a child process (~60 s
    # here); the plugin is not on that path, so the test lets it fall back at once.
    monkeypatch.setenv("MLFLOW_REQUIREMENTS_INFERENCE_TIMEOUT", "1")
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile("adam", "mse")
    mlflow.keras.autolog()
    try:
        with mlflow.start_run() as run:
            model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    finally:
        mlflow.keras.autolog(disable=True)
    got = MlflowClient().get_run(run.info.run_id)
    assert got.data.params["epochs"] == "3"
    history = MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [0, 1, 2]
    (logged,) = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id], output_format="list"
    )
    assert logged.source_run_id == run.info.run_id and logged.status.name == "READY"
    loaded = mlflow.keras.load_model(f"models:/{logged.model_id}")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
