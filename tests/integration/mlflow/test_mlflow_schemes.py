"""Unchanged MLflow code against both schemes: ``runstream+kafka://`` on the shared stack (a
topic prefix and S3 prefix of the test's own) and ``runstream+file://`` (embedded). One process
logs and ends its runs, another reads them back through MlflowClient, and Runstream's query
engine (not the plugin) confirms what landed. PyTorch Lightning's ``MLFlowLogger`` and
transformers' ``MLflowCallback`` log from a process of their own, and what they logged reads
back through MLflow's client, the query engine, the CLI and the UI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import torch
from mlflow import MlflowClient
from starlette.testclient import TestClient

from runstream.contract.identifiers import EXPERIMENT_STREAM_PREFIX, MODEL_STREAM_PREFIX
from runstream.core.kafka_admin import ensure_topics
from runstream.core.settings import Settings
from runstream.query import QueryEngine
from runstream.ui import Backend, create_app

WORKER = Path(__file__).with_name("mlflow_worker.py")


def run_worker(env: dict[str, str], *args: str, script: Path = WORKER) -> dict[str, object]:
    """Run ``script`` with ``args`` in a process of its own; the JSON of its last output line."""
    # MLflow infers a model's pip requirements in a child process (seconds, not the plugin).
    env = {**env, "MLFLOW_REQUIREMENTS_INFERENCE_TIMEOUT": "1"}
    done = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        timeout=300,
        check=False,
        env=env,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def check_both_readers(env: dict[str, str], settings: Settings) -> None:
    experiment = f"mlflow-{uuid.uuid4().hex[:8]}"
    written = run_worker(env, "write", experiment)
    assert written["seen_inside"] == pytest.approx(1 / 200)  # read-your-writes in the process
    parent, child = str(written["parent"]), str(written["child"])
    read = run_worker(env, "read", experiment, parent, child)  # another process, after end_run
    assert read == {
        "status": "FINISHED",
        "params": {"lr": "0.01", "optimizer": "adam"},
        "tags_team": "vision",
        "loss_points": 200,
        "acc": 0.5,
        "child_parent": parent,
        "search": [child],
        "artifacts": ["notes/hello.txt"],
        "text": "hello",
        "prediction": pytest.approx(7.0),
    }
    with QueryEngine.from_settings(settings) as engine:
        run = engine.get_run(parent)
        assert run.collection == written["experiment_id"]
        assert run.status == "FINISHED" and run.params["optimizer"] == "adam"
        assert engine.get_metric_history(parent, "loss").num_rows == 200
        assert sorted(run.artifacts) == ["notes/hello.txt"]
        names = {
            s.name.value
            for s in engine.entity_states(EXPERIMENT_STREAM_PREFIX)
            if s.name is not None
        }
        assert experiment in names
        models = [
            s
            for s in engine.entity_states(MODEL_STREAM_PREFIX)
            if s.source_dict().get("source_run_id") == parent
        ]
        assert [m.status_value for m in models] == ["READY"]
        assert "MLmodel" in {a.path for a in engine.list_artifacts(models[0].run_id)}


def kafka_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    """The environment of unchanged MLflow code logging to ``runstream+kafka://`` (the test's
    own topics, S3 prefix and spill folder)."""
    ensure_topics(settings, partitions=3)
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"runstream+{settings.tracking_uri}",
        "RUNSTREAM_STORE": settings.store,
        "RUNSTREAM_S3_ENDPOINT": settings.s3_endpoint or "",
        "RUNSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "RUNSTREAM_SPILL_DIR": str(tmp_path / "spill"),
    }


def file_env(tmp_path: Path) -> tuple[dict[str, str], Settings]:
    """The environment of unchanged MLflow code logging to ``runstream+file://`` (embedded), and
    Runstream's settings of the same log and store."""
    settings = Settings.resolve(f"file://{tmp_path / 'log'}", str(tmp_path / "store"), environ={})
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"runstream+file://{tmp_path / 'log'}",
        "RUNSTREAM_STORE": str(tmp_path / "store"),
    }
    return env, settings


@pytest.mark.integration
def test_unchanged_mlflow_code_on_runstream_kafka(kafka_settings: Settings, tmp_path: Path) -> None:
    check_both_readers(kafka_env(kafka_settings, tmp_path), kafka_settings)


def test_unchanged_mlflow_code_on_runstream_file(tmp_path: Path) -> None:
    check_both_readers(*file_env(tmp_path))


FRAMEWORKS = Path(__file__).with_name("frameworks_worker.py")


def check_frameworks(
    env: dict[str, str], settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """scikit-learn and Keras autolog, Lightning's MLFlowLogger and transformers' MLflowCallback
    log from a process of their own; each run ends FINISHED, and its params and the points of one
    metric, as the framework itself saw them, read back equal through MLflow's client,
    Runstream's query engine, the CLI and the UI's API."""
    logged = run_worker(env, f"fw-{uuid.uuid4().hex[:8]}", str(tmp_path / "fw"), script=FRAMEWORKS)
    assert sorted(logged) == ["keras", "lightning", "sklearn", "transformers"]
    for name in ("RUNSTREAM_STORE", "RUNSTREAM_S3_ENDPOINT", "RUNSTREAM_TOPIC_PREFIX"):
        if name in env:
            monkeypatch.setenv(name, env[name])
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    cli = [str(Path(sys.executable).parent / "runstream")]
    cli_env = {**env, "RUNSTREAM_TRACKING_URI": str(settings.tracking_uri)}

    def shown(*args: str) -> Any:
        done = subprocess.run(
            [*cli, *args, "--output", "json"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env=cli_env,
        )
        return json.loads(done.stdout)

    with QueryEngine.from_settings(settings) as engine:
        app = create_app(Backend.from_settings(settings))
        with TestClient(app, base_url="http://127.0.0.1") as http:
            for framework, truth in logged.items():
                assert isinstance(truth, dict)
                run_id, key, params = truth["run_id"], truth["key"], truth["params"]
                points = {int(step): value for step, value in truth["points"].items()}
                run = client.get_run(run_id)
                (listed,) = shown(
                    "runs", f"run_id = '{run_id}'", "--columns", "run_id,status,params"
                )
                ui_run = http.get(f"/api/runs/{run_id}").json()
                assert run.info.status == listed["status"] == ui_run["status"] == "FINISHED"
                for seen in (run.data.params, engine.get_run(run_id).params, listed["params"]):
                    assert {k: seen[k] for k in params} == params, framework
                by_mlflow = {m.step: m.value for m in client.get_metric_history(run_id, key)}
                table = engine.get_metric_history(run_id, key)
                by_engine = dict(
                    zip(table["step"].to_pylist(), table["value"].to_pylist(), strict=True)
                )
                by_cli = {row["step"]: row["value"] for row in shown("history", run_id, key)}
                served = http.get("/api/history", params={"run": run_id, "key": key}).json()
                by_ui = dict(zip(served["step"], served["value"], strict=True))
                for reader in (by_mlflow, by_engine, by_cli, by_ui):
                    assert reader == pytest.approx(points, rel=1e-6), (framework, key)

    # Lightning (log_model=True) logs the last checkpoint under its stem, as an artifact.
    lightning_run = logged["lightning"]
    assert isinstance(lightning_run, dict)
    (checkpoint,) = client.list_artifacts(lightning_run["run_id"])
    assert checkpoint.is_dir and checkpoint.path == "epoch=1-step=16"
    folder = client.download_artifacts(lightning_run["run_id"], checkpoint.path, str(tmp_path))
    (ckpt,) = Path(folder).glob("*.ckpt")
    state = torch.load(ckpt, weights_only=False)["state_dict"]
    assert sorted(state) == ["layer.bias", "layer.weight"]


@pytest.mark.integration
def test_framework_integrations_on_runstream_kafka(
    kafka_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check_frameworks(kafka_env(kafka_settings, tmp_path), kafka_settings, tmp_path, monkeypatch)


def test_framework_integrations_on_runstream_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, settings = file_env(tmp_path)
    check_frameworks(env, settings, tmp_path, monkeypatch)
