"""Unchanged MLflow code against both schemes: ``runstream+kafka://`` on the shared stack (a
topic prefix and S3 prefix of the test's own) and ``runstream+file://`` (embedded). One process
logs and ends its runs, another reads them back through MlflowClient, and Runstream's query
engine (not the plugin) confirms what landed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from runstream.contract.identifiers import EXPERIMENT_STREAM_PREFIX, MODEL_STREAM_PREFIX
from runstream.core.kafka_admin import ensure_topics
from runstream.core.settings import Settings
from runstream.query import QueryEngine

WORKER = Path(__file__).with_name("mlflow_worker.py")


def run_worker(env: dict[str, str], *args: str) -> dict[str, object]:
    # MLflow infers a model's pip requirements in a child process (seconds, not the plugin).
    env = {**env, "MLFLOW_REQUIREMENTS_INFERENCE_TIMEOUT": "1"}
    done = subprocess.run(
        [sys.executable, str(WORKER), *args],
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


@pytest.mark.integration
def test_unchanged_mlflow_code_on_runstream_kafka(kafka_settings: Settings, tmp_path: Path) -> None:
    ensure_topics(kafka_settings, partitions=3)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"runstream+{kafka_settings.tracking_uri}",
        "RUNSTREAM_STORE": kafka_settings.store,
        "RUNSTREAM_S3_ENDPOINT": kafka_settings.s3_endpoint or "",
        "RUNSTREAM_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "RUNSTREAM_SPILL_DIR": str(tmp_path / "spill"),
    }
    check_both_readers(env, kafka_settings)


def test_unchanged_mlflow_code_on_runstream_file(tmp_path: Path) -> None:
    settings = Settings.resolve(f"file://{tmp_path / 'log'}", str(tmp_path / "store"), environ={})
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"runstream+file://{tmp_path / 'log'}",
        "RUNSTREAM_STORE": str(tmp_path / "store"),
    }
    check_both_readers(env, settings)
