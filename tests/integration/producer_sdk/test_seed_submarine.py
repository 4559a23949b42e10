"""Apache Submarine's tracking calls (get/set_tracking_uri, log_param, log_metric(key, value,
step=0)) from a worker of a distributed job, in both modes: the worker's index from RANK,
LOCAL_RANK or TensorFlow's TF_CONFIG is on every event, and the reads see the points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runstream import tracking
from runstream.contract import Codec, decode_batch
from runstream.core.errors import RunstreamError
from runstream.core.locallog import read_log
from runstream.core.settings import Settings

from .conftest import topic_events
from .seed_modes import MODES, Mode, mode_env

# Submarine's doc: no run is started by hand, the job's launcher names it (RUNSTREAM_RUN_ID)
WORKER = """
from runstream import tracking as submarine
import os
assert submarine.get_tracking_uri() == os.environ["RUNSTREAM_TRACKING_URI"]
submarine.set_tracking_uri(submarine.get_tracking_uri())
submarine.log_param("learning_rate", 0.01)
for step in range(3):
    submarine.log_metric("accuracy", 0.5 + step / 10, step)
submarine.log_metric("final", 0.9)
"""


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Mode:
    return mode_env(request.param, tmp_path, request, monkeypatch)


def producers(mode: Mode) -> list[Any]:
    """The producer of every event of the mode's log."""
    if mode.name == "kafka":
        settings = Settings.resolve(environ=mode.env)
        return [producer for producer, _ in topic_events(settings)]
    folder = Settings.resolve(environ=mode.env).tracking_uri.path / "events"
    codec = Codec()
    out = []
    for record in read_log(folder):
        batch = decode_batch(codec, record.value)
        out.extend(batch.producer for _ in batch.logical_events())
    return out


@pytest.mark.integration
def test_submarine_workers(mode: Mode, tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "TF_CONFIG")}
    env["RUNSTREAM_RUN_ID"] = "submarine-job"
    tf_config = {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}
    for extra in ({"RANK": "0", "LOCAL_RANK": "0"}, {"TF_CONFIG": json.dumps(tf_config)}):
        subprocess.run([sys.executable, str(script)], check=True, env={**env, **extra}, timeout=120)
    seen = {(p.rank, p.local_rank, p.worker) for p in producers(mode)}
    assert seen == {(0, 0, None), (1, None, "worker:1")}

    def read() -> tuple[Any, list[dict[str, Any]]]:
        run = tracking.get_runs(run="submarine-job")[0]
        return run, tracking.get_metrics_history(run=run, metrics=["accuracy"])

    run, history = mode.run(read)
    assert run.params["learning_rate"] == "0.01" and run.metrics["final"].step == 0
    assert run.name == "submarine-job"  # named by its id
    # both workers logged steps 0..2 of the one job: every point is there, each once
    assert [(p["step"], p["value"]) for p in history[0]["values"]] == [
        (step, 0.5 + step / 10) for step in range(3) for _ in range(2)
    ]


@pytest.mark.integration
def test_submarine_bad_input_names_field_and_keeps_earlier(
    mode: Mode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNSTREAM_RUN_ID", "submarine-bad")

    def example() -> tuple[list[RunstreamError], Any]:
        caught = []
        tracking.log_metric("accuracy", 0.5, step=0)
        for call in (
            lambda: tracking.log_metric("accuracy", "high", step=1),
            lambda: tracking.log_metric("a" * 251, 0.5),
            lambda: tracking.log_param("lr", "x" * 6001),
            lambda: tracking.log_metric("accuracy", 0.6, step=2**63),
        ):
            with pytest.raises(RunstreamError) as bad:
                call()
            caught.append(bad.value)
        run = tracking.get_runs(run="submarine-bad")[0]
        return caught, (run, tracking.get_metrics_history(run=run, metrics=["accuracy"]))

    caught, (run, history) = mode.run(example)
    assert [(e.field, e.limit) for e in caught] == [  # type: ignore[attr-defined]
        ("value", "a real number"),
        ("key", "at most 250 characters"),
        ("value", "at most 6000 characters"),
        ("step", "-2**63 to 2**63-1"),
    ]
    assert [(p["step"], p["value"]) for p in history[0]["values"]] == [(0, 0.5)]
    assert "lr" not in run.params
