"""The same endpoints over Kafka + S3: a run logged by the SDK to the local broker is served
from the query layer's Kafka tail (nothing compacted yet), log lines included."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from runstream.core.kafka_admin import ensure_topics
from runstream.core.settings import Settings
from runstream.tracking import Client
from runstream.ui import Backend, create_app

pytestmark = pytest.mark.integration


def test_run_history_and_logs_from_the_kafka_tail(s3_settings: Settings, tmp_path: Path) -> None:
    ensure_topics(s3_settings)
    client = Client(settings=s3_settings, spill_dir=tmp_path / "spill")
    run = client.start_run("on-kafka", "ui-kafka", run_id="ui-kafka-1", capture_code=False)
    for step in range(300):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    run.log("hello from kafka", level="warn")
    run.flush()
    try:
        app = create_app(Backend.from_settings(s3_settings))
        with TestClient(app, base_url="http://127.0.0.1") as http:
            shown = http.get("/api/runs/ui-kafka-1").json()
            assert (shown["name"], shown["status"]) == ("on-kafka", "RUNNING")
            history = http.get("/api/history", params={"run": "ui-kafka-1", "key": "loss"})
            assert history.json()["step"] == list(range(300))
            logs = http.get("/api/runs/ui-kafka-1/logs", params={"level": "warn"}).json()
            assert [line["message"] for line in logs["lines"]] == ["hello from kafka"]
            for step in range(300, 400):  # live: the next call sees new points
                run.log_metric("loss", 0.0, step=step)
            run.flush()
            again = http.get("/api/history", params={"run": "ui-kafka-1", "key": "loss"})
            assert again.json()["points"] == 400
    finally:
        client.close()
