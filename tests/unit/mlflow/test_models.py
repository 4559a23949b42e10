"""MLflow 3's model calls on Runstream: ``mlflow.sklearn.autolog()`` on a scikit-learn fit,
``log_model`` and ``load_model`` by ``runs:/`` and ``models:/<model_id>``, artifacts listed and
downloaded; the files are checked with Runstream's query layer too."""

from __future__ import annotations

import mlflow
import mlflow.sklearn
import numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from runstream.contract.identifiers import MODEL_STREAM_PREFIX, model_stream
from runstream.core.settings import Settings
from runstream.query import QueryEngine


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    return x, (x[:, 0] > 0).astype(int)


def test_sklearn_autolog_logs_params_metrics_and_a_model_that_loads(
    tracking_uri: str, runstream_settings: Settings
) -> None:
    x, y = data()
    mlflow.set_experiment("autolog")
    mlflow.sklearn.autolog()
    try:
        with mlflow.start_run() as run:
            LogisticRegression(C=0.5, max_iter=50).fit(x, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    got = MlflowClient().get_run(run.info.run_id)
    assert got.data.params["C"] == "0.5"
    assert "training_accuracy_score" in got.data.metrics
    models = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id], output_format="list"
    )
    assert [m.source_run_id for m in models] == [run.info.run_id]
    loaded = mlflow.sklearn.load_model(f"models:/{models[0].model_id}")
    assert (loaded.predict(x) == LogisticRegression(C=0.5, max_iter=50).fit(x, y).predict(x)).all()
    with QueryEngine.from_settings(runstream_settings) as engine:
        states = engine.entity_states(MODEL_STREAM_PREFIX)
        assert [s.status_value for s in states] == ["READY"]
        files = engine.list_artifacts(model_stream(models[0].model_id))
        assert "MLmodel" in {f.path for f in files}


def test_log_model_and_load_by_run_and_model_uri(tracking_uri: str) -> None:
    x, y = data()
    model = LogisticRegression(max_iter=50).fit(x, y)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="clf", input_example=x[:2])
    by_model = mlflow.pyfunc.load_model(f"models:/{info.model_id}")
    by_run = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/clf")
    assert (by_model.predict(x) == model.predict(x)).all()
    assert (by_run.predict(x) == model.predict(x)).all()
    listed = {f.path for f in MlflowClient().list_artifacts(run.info.run_id, "clf")}
    assert "clf/MLmodel" in listed
    logged = mlflow.get_logged_model(info.model_id)
    assert logged.name == "clf" and logged.status.name == "READY"


def test_artifacts_log_list_download(tracking_uri: str, tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path)) / "out"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    (folder / "sub").mkdir()
    (folder / "sub" / "b.txt").write_text("bb")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(folder), "files")
        mlflow.log_dict({"k": 1}, "config.json")
    client = MlflowClient()
    top = [(f.path, f.is_dir) for f in client.list_artifacts(run.info.run_id)]
    assert top == [("config.json", False), ("files", True)]
    inner = [
        (f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run.info.run_id, "files")
    ]
    assert inner == [("files/a.txt", False, 1), ("files/sub", True, None)]
    local = Path(
        mlflow.artifacts.download_artifacts(
            f"runs:/{run.info.run_id}/files", dst_path=str(tmp_path)
        )
    )
    assert (local / "sub" / "b.txt").read_text() == "bb"
    assert mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/config.json") == {"k": 1}
