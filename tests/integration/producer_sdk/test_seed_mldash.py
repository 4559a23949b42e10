"""ML-Dash's experiment calls (params.set, metrics(name).log / read / stats, log with its
levels, log lines read back by level and time), on a run handle, reads included, in both
modes."""

from __future__ import annotations

import contextvars
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runstream import tracking
from runstream.core.errors import RunstreamError

from .seed_modes import MODES, Mode, mode_env


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Mode:
    return mode_env(request.param, tmp_path, request, monkeypatch)


def mldash_example() -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tracking.start_run(run_name="dash", run_collection_name="vision") as experiment:
        experiment.params.set(learning_rate=0.001, model={"name": "resnet", "depth": 18})
        for epoch in range(12):
            experiment.metrics("loss").log(value=1.0 / (epoch + 1), epoch=epoch)
        experiment.metrics("train").log(loss=0.9, epoch=0)
        experiment.metrics("train").log(loss=0.7, epoch=1, accuracy=0.55)
        for level in ("debug", "info", "warn", "error", "fatal"):
            experiment.log(f"a {level} line", level=level)
        time.sleep(0.01)  # times compare in milliseconds
        middle = datetime.now(UTC)
        time.sleep(0.01)
        experiment.log("late error", level="error", metadata={"epoch": 12})
        out["errors"] = experiment.read_logs(level=["error", "fatal"])
        out["late"] = experiment.read_logs(level="error", since=middle)
        out["early"] = experiment.read_logs(until=middle)
        out["page"] = experiment.metrics("loss").read(start_index=0, limit=10)
        out["rest"] = experiment.metrics("loss").read(start_index=10, limit=10)
        out["train"] = experiment.metrics("train").read(start_index=0, limit=10)
        out["stats"] = experiment.metrics("loss").stats()
        with pytest.raises(RunstreamError) as bad:
            experiment.log("x", level="loud")
        out["bad_level"] = bad.value
        with pytest.raises(RunstreamError) as bad_read:
            experiment.metrics("loss").read(start_index=-1, limit=10)
        out["bad_read"] = bad_read.value
        out["after_bad"] = experiment.metrics("loss").stats()
    return out


@pytest.mark.integration
def test_mldash_example(mode: Mode) -> None:
    out = mode.run(mldash_example)
    assert out["page"]["data"] == [
        {"index": i, "data": {"value": 1.0 / (i + 1), "epoch": float(i)}} for i in range(10)
    ]
    assert [p["index"] for p in out["rest"]["data"]] == [10, 11]
    assert out["train"]["data"] == [
        {"index": 0, "data": {"loss": 0.9, "epoch": 0.0}},
        {"index": 1, "data": {"loss": 0.7, "epoch": 1.0, "accuracy": 0.55}},
    ]
    assert out["stats"]["totalDataPoints"] == 12
    assert (out["bad_level"].field, out["bad_read"].field) == ("level", "start_index")
    assert "fatal" in out["bad_level"].limit
    assert out["after_bad"]["totalDataPoints"] == 12
    assert [(x["level"], x["message"]) for x in out["errors"]] == [
        ("error", "a error line"),
        ("fatal", "a fatal line"),
        ("error", "late error"),
    ]
    assert [(x["message"], x["metadata"]) for x in out["late"]] == [("late error", {"epoch": "12"})]
    assert [x["level"] for x in out["early"]] == ["debug", "info", "warn", "error", "fatal"]


def mldash_docs_example() -> dict[str, Any]:
    """ML-Dash's getting-started and metrics pages, as written (``from runstream.tracking
    import Experiment`` for ``from ml_dash import Experiment``; the tracking URI from the
    environment, so no ``local_path``)."""
    from runstream.tracking import Experiment

    with Experiment(prefix="alice/tutorial/my-first-experiment").run as experiment:
        experiment.log("Training started")
        experiment.params.set(learning_rate=0.001, batch_size=32, epochs=10)
        for epoch in range(10):
            loss = 1.0 - epoch * 0.08
            experiment.metrics("loss").append(value=loss, epoch=epoch)
        for epoch in range(3):
            experiment.metrics.log(
                epoch=epoch,
                train=dict(loss=0.5 / (epoch + 1), accuracy=0.8),
                eval=dict(loss=0.6 / (epoch + 1), accuracy=0.75),
            )
        for i in range(100):
            experiment.metrics("train").log(loss=1.0 / (i + 1), step=i)
        experiment.metrics.log(epoch=3).flush()
        result = experiment.metrics("train").read(start_index=0, limit=10)
        experiment.log("Training completed")
        first = experiment.started
    return {"result": result, "run": tracking.get_runs(run=first)[0], "run_id": first.run_id}


@pytest.mark.integration
def test_mldash_docs_example_with_experiment(mode: Mode) -> None:
    out = mode.run(mldash_docs_example)
    run = out["run"]
    assert (run.name, run.collection, run.status) == ("my-first-experiment", "tutorial", "FINISHED")
    logged = {"learning_rate": "0.001", "batch_size": "32", "epochs": "10"}
    assert logged.items() <= run.params.items()  # with SAP's system params start and end
    assert run.metrics["loss/value"].value == pytest.approx(1.0 - 9 * 0.08)
    assert run.metrics["eval/accuracy"].value == 0.75 and run.metrics["epoch"].value == 3.0
    data = out["result"]["data"]
    assert [point["index"] for point in data] == list(range(10))
    assert data[0]["data"]["loss"] == 1.0 and data[9]["data"]["loss"] == pytest.approx(0.1)


@pytest.mark.integration
def test_mldash_experiment_local_path_and_statuses(tmp_path: Path) -> None:
    from runstream.core.settings import Settings
    from runstream.query import QueryEngine
    from runstream.tracking import Experiment, ValidationError

    folder = tmp_path / ".ml-dash"

    def example() -> list[str]:
        done = Experiment(name="done", project="p", local_path=folder)
        with done:
            done.metrics("loss").log(value=0.5)
        cancelled = Experiment(name="cancelled", project="p", local_path=folder)
        cancelled.run.start()
        cancelled.run.cancel()
        try:
            with Experiment(name="failed", project="p", local_path=folder).run():
                raise RuntimeError("diverged")
        except RuntimeError:
            pass
        with pytest.raises(ValidationError) as bad:
            Experiment(name="x", remote="https://api.dash.ml")
        assert bad.value.field == "remote"
        with pytest.raises(tracking.NoActiveRunError):
            Experiment(name="x").params  # noqa: B018  (not started)
        return [done.run_id, cancelled.run_id]

    contextvars.copy_context().run(example)  # its own active-run context, as a script has
    with QueryEngine.from_settings(Settings.resolve(f"file://{folder}", environ={})) as engine:
        found = {r.name: r.status for r in engine.search_runs()}
    assert found == {"done": "FINISHED", "cancelled": "KILLED", "failed": "FAILED"}
