"""Polyaxon's tracking client: an experiment object with log_params, log_metrics(step=,
**metrics), log_tags, log_artifact, log_model and end(status); the code version captured at
run start; RUNSTREAM_NO_OP=1 validates every call and writes nothing anywhere. Both modes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from runstream import tracking
from runstream.contract import RunStarted
from runstream.core.errors import RunstreamError
from runstream.core.settings import Settings

from .seed_modes import MODES, Mode, log_events, mode_env


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Mode:
    return mode_env(request.param, tmp_path, request, monkeypatch)


def polyaxon_example(folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    (folder / "summary.txt").write_text("accuracy 0.6\n")
    experiment = tracking.start_run(run_name="polyaxon", run_collection_name="mnist")
    experiment.log_params(learning_rate=0.01, dropout=0.25)
    experiment.log_tags(["cnn", "baseline"])
    for step in range(1, 4):
        experiment.log_metrics(step=step, loss=1.0 / step, accuracy=0.2 * step)
    experiment.log_artifact(folder / "summary.txt")
    experiment.log_model({"weights": [1, 2, 3]}, "model")
    with pytest.raises(RunstreamError) as bad:
        experiment.log_metrics(step=4, loss=0.1, accuracy="high")
    out["bad"] = bad.value
    experiment.end("succeeded")
    out["run_id"] = experiment.run_id
    out["runs"] = tracking.get_runs(run=experiment)
    out["history"] = tracking.get_metrics_history(run=experiment, metrics=["loss"])
    return out


@pytest.mark.integration
def test_polyaxon_example(mode: Mode, tmp_path: Path) -> None:
    out = mode.run(lambda: polyaxon_example(tmp_path))
    [run] = out["runs"]
    assert run.status == "FINISHED" and run.collection == "mnist"
    assert (run.params["learning_rate"], run.params["dropout"]) == ("0.01", "0.25")
    assert {"cnn": "", "baseline": ""}.items() <= run.tags.items()
    assert run.metrics["accuracy"].value == pytest.approx(0.6)
    assert [(p["step"], p["value"]) for p in out["history"][0]["values"]] == [
        (1, 1.0),
        (2, 0.5),
        (3, 1.0 / 3),
    ]  # the rejected call (step 4) logged nothing
    assert (out["bad"].field, out["bad"].limit) == ("value", "a real number")
    assert "summary.txt" in run.artifacts
    assert any(path.startswith("model/") for path in run.artifacts)
    starts = [e.payload for _, e in log_events(mode) if isinstance(e.payload, RunStarted)]
    [named] = [s for s in starts if s.name == "polyaxon"]
    # the code version follows in a RunStarted of its own with the run's start time
    [started] = [s for s in starts if s.start_time_us == named.start_time_us and s.command]
    assert started.git_commit and len(started.git_commit) == 40  # this repository
    assert started.command and sys.executable in started.command
    assert started.python_version == ".".join(map(str, sys.version_info[:3]))
    assert started.packages.get("pytest")


@pytest.mark.integration
def test_polyaxon_no_op_writes_nothing(
    mode: Mode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNSTREAM_NO_OP", "1")
    monkeypatch.chdir(tmp_path)  # where the default folder would appear
    store = Settings.resolve(environ={**mode.env}).store

    def example() -> RunstreamError:
        (tmp_path / "summary.txt").write_text("x")
        experiment = tracking.start_run(run_name="silent")
        experiment.log_params(learning_rate=0.01)
        experiment.log_tags("cnn")
        experiment.log_metrics(step=1, loss=0.5)
        experiment.log_artifact(tmp_path / "summary.txt")
        experiment.log_model({"w": 1}, "model")
        with pytest.raises(RunstreamError) as bad:  # still validated
            experiment.log_metrics(step=2, loss="x")
        experiment.end("failed")
        tracking.flush()
        assert tracking.get_runs(run=experiment) == []  # reads find nothing, create nothing
        assert experiment.metrics("loss").stats()["totalDataPoints"] == 0
        return bad.value

    assert mode.run(example).field == "value"  # type: ignore[attr-defined]
    assert log_events(mode) == []
    assert not (tmp_path / "runstream-data").exists()
    if mode.name == "kafka":
        from runstream.core.filesystem import open_store

        fs, root = open_store(Settings.resolve(environ={**mode.env}))
        assert not fs.exists(root), store


def polyaxon_module_example() -> dict[str, Any]:
    """Polyaxon's module-level style: ``tracking.init()`` then the calls on the module."""
    tracking.init(name="init-style", project="mnist", tags=["cnn"], description="a small cnn")
    tracking.log_params(learning_rate=0.01)
    for step in range(3):
        tracking.log_metrics(step=step, loss=1.0 / (step + 1), accuracy=0.3 * step)
    run = tracking.end_run()
    return {"run": tracking.get_runs(run=run)[0]}


@pytest.mark.integration
def test_polyaxon_init_then_module_calls(mode: Mode) -> None:
    run = mode.run(polyaxon_module_example)["run"]
    assert (run.name, run.collection, run.status) == ("init-style", "mnist", "FINISHED")
    assert run.tags["cnn"] == "" and run.tags["description"] == "a small cnn"
    assert run.params["learning_rate"] == "0.01"
    assert (run.metrics["loss"].value, run.metrics["loss"].step) == (pytest.approx(1 / 3), 2)
