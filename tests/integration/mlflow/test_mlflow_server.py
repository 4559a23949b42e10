"""``mlflow server --backend-store-uri runstream+…`` serves MLflow's REST API over the plugin:
MLflow's Python client drives it over HTTP (as R, Java or curl would), and Runstream's query
engine reads what landed. Both schemes: embedded and the shared stack's Kafka."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from runstream.core.kafka_admin import ensure_topics
from runstream.core.settings import Settings
from runstream.query import QueryEngine

MLFLOW = Path(sys.executable).with_name("mlflow")
START_SECONDS = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(backend: str, env: dict[str, str], log: Path) -> Iterator[str]:
    """Run ``mlflow server`` on a free port until the test ends; yield its URL."""
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(MLFLOW), "server", "--backend-store-uri", backend, "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"no answer in {START_SECONDS}s"
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)


def drive(url: str, settings: Settings) -> None:
    client = MlflowClient(url)
    name = f"rest-{uuid.uuid4().hex[:8]}"
    experiment_id = client.create_experiment(name, tags={"via": "rest"})
    assert client.get_experiment_by_name(name).experiment_id == experiment_id
    run = client.create_run(experiment_id, run_name="over-http")
    run_id = run.info.run_id
    client.log_batch(
        run_id,
        metrics=[Metric("loss", 1.0 / (i + 1), 1_700_000_000_000 + i, i) for i in range(300)],
        params=[Param("lr", "0.1")],
        tags=[RunTag("team", "java")],
    )
    client.log_metric(run_id, "acc", 0.9)
    client.set_terminated(run_id)
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "over-http"
    assert got.data.params == {"lr": "0.1"} and got.data.metrics["acc"] == 0.9
    assert len(client.get_metric_history(run_id, "loss")) == 300
    found = client.search_runs([experiment_id], "metrics.acc > 0.5 and params.lr = '0.1'")
    assert [r.info.run_id for r in found] == [run_id]
    with pytest.raises(Exception, match="Changing param values is not allowed"):
        client.log_param(run_id, "lr", "0.2")
    with QueryEngine.from_settings(settings) as engine:  # not through the server
        assert engine.get_run(run_id).params == {"lr": "0.1"}
        assert engine.get_metric_history(run_id, "loss").num_rows == 300


def test_mlflow_server_over_runstream_file(tmp_path: Path) -> None:
    settings = Settings.resolve(f"file://{tmp_path / 'log'}", str(tmp_path / "store"), environ={})
    env = {**os.environ, "RUNSTREAM_STORE": settings.store}
    for url in serve(f"runstream+file://{tmp_path / 'log'}", env, tmp_path / "server.log"):
        drive(url, settings)


@pytest.mark.integration
def test_mlflow_server_over_runstream_kafka(kafka_settings: Settings, tmp_path: Path) -> None:
    ensure_topics(kafka_settings, partitions=3)
    env = {
        **os.environ,
        "RUNSTREAM_STORE": kafka_settings.store,
        "RUNSTREAM_S3_ENDPOINT": kafka_settings.s3_endpoint or "",
        "RUNSTREAM_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "RUNSTREAM_SPILL_DIR": str(tmp_path / "spill"),
    }
    backend = f"runstream+{kafka_settings.tracking_uri}"
    for url in serve(backend, env, tmp_path / "server.log"):
        drive(url, kafka_settings)
