"""SAP Data Intelligence's ``sapdi.tracking`` example, as its doc writes it (with
``from runstream import tracking`` for ``from sapdi import tracking``), reads included, in both
modes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runstream import tracking
from runstream.core.errors import RunstreamError

from .seed_modes import MODES, Mode, mode_env


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Mode:
    return mode_env(request.param, tmp_path, request, monkeypatch)


def sap_example() -> dict[str, Any]:
    """The doc's flow: start, log, persist, end, log to the ended run, rename, read, delete."""
    out: dict[str, Any] = {}
    tracking.update_run_info(tags={"project": "churn"})  # before the run: applies to it
    tracking.start_run(run_collection_name="RC1", run_name="LR_run_5")
    tracking.log_parameters({"alpha": 0.5, "solver": "lbfgs", "layers": [64, 32]})
    tracking.log_metric(name="metric_name", value=1)
    tracking.log_metrics({"accuracy": 0.91, "recall": 0.8})
    tracking.log_metrics(
        [{"name": "loss", "value": 0.7}, {"name": "loss", "value": 0.4, "step": 1}]
    )
    tracking.set_tags({"framework": "sklearn"})
    tracking.set_labels({"stage": "dev"})
    tracking.update_run_info(run_name="LR_run_5b")  # during the run
    out["active_history"] = tracking.get_metrics_history()
    tracking.persist_run()
    run = tracking.end_run()
    tracking.log_metric("uncertainty", 0.4, run=run)  # after the end, through run=
    tracking.update_run_info(run=run, run_name="LR_run_6", run_collection_name="RC2")
    out["runs"] = tracking.get_runs(run=run)
    out["tagged"] = tracking.get_runs(run=run, tags={"framework": "sklearn"})
    out["untagged"] = tracking.get_runs(run=run, tags={"framework": "torch"})
    out["history"] = tracking.get_metrics_history(run=out["runs"][0], metrics=["loss"])
    out["page"] = tracking.get_metrics_history(run=run, metrics="loss", start_step=1, end_step=9)
    unnamed = tracking.start_run()
    tracking.log_metric("x", 1.0)
    tracking.end_run()
    out["unnamed"] = tracking.get_runs(run=unnamed)[0]
    out["deleted"] = tracking.delete_runs(run=run)
    out["after_delete"] = tracking.get_runs(run=run)
    other = tracking.start_run(run_collection_name="RC3")
    tracking.end_run()
    out["collection_deleted"] = tracking.delete_runs(run_collection_name="RC3")
    out["collection_after"] = tracking.get_runs(run_collection_name="RC3")
    out["other"] = other.run_id
    return out


@pytest.mark.integration
def test_sap_doc_example(mode: Mode) -> None:
    out = mode.run(sap_example)
    [active] = [h for h in out["active_history"] if h["name"] == "loss"]
    assert [(p["step"], p["value"]) for p in active["values"]] == [(0, 0.7), (1, 0.4)]
    [run] = out["runs"]
    assert out["tagged"] == [run] and out["untagged"] == []
    assert (run.name, run.collection, run.status) == ("LR_run_6", "RC2", "FINISHED")
    assert {k: run.params[k] for k in ("alpha", "solver", "layers")} == {
        "alpha": "0.5",
        "solver": "lbfgs",
        "layers": "[64, 32]",
    }
    assert run.params["start"] and run.params["end"] >= run.params["start"]
    assert run.tags == {"project": "churn", "framework": "sklearn", "runName": "LR_run_6"}
    assert run.labels == {"stage": "dev"}
    assert {k: m.value for k, m in run.metrics.items()} == {
        "metric_name": 1.0,
        "accuracy": 0.91,
        "recall": 0.8,
        "loss": 0.4,
        "uncertainty": 0.4,
    }
    [history] = out["history"]
    assert history["name"] == "loss" and history["run_id"] == run.run_id
    assert [(p["step"], p["value"]) for p in history["values"]] == [(0, 0.7), (1, 0.4)]
    assert [(p["step"], p["value"]) for p in out["page"][0]["values"]] == [(1, 0.4)]
    unnamed = out["unnamed"]
    assert unnamed.name == unnamed.run_id == unnamed.tags["runName"]
    assert unnamed.collection == Path(sys.modules["__main__"].__file__ or "").name
    assert out["deleted"] == [run.run_id] and out["after_delete"] == []
    assert out["collection_deleted"] == [out["other"]] and out["collection_after"] == []


@pytest.mark.integration
def test_sap_bad_input_names_field_and_limit_and_keeps_earlier(mode: Mode) -> None:
    def example() -> tuple[list[RunstreamError], Any]:
        errors = []
        run = tracking.start_run(run_collection_name="RC1", run_name="bad-input")
        tracking.log_parameters({"n" * 256: "kept"})  # SAP allows 256 characters
        tracking.log_metric(name="loss", value=0.5)
        for call in (
            lambda: tracking.log_parameters({"ok": 1, "n" * 257: 2}),
            lambda: tracking.log_metric(name="loss", value="high"),
            lambda: tracking.log_metrics([{"name": "loss", "value": 1.0}, {"name": "loss"}]),
            lambda: tracking.start_run(run_collection_name="c" * 251),
        ):
            with pytest.raises(RunstreamError) as caught:
                call()
            errors.append(caught.value)
        tracking.end_run()
        return errors, tracking.get_runs(run=run)[0]

    errors, run = mode.run(example)
    assert [(e.field, e.limit) for e in errors] == [  # type: ignore[attr-defined]
        ("name", "at most 256 characters"),
        ("value", "a real number"),
        ("metrics", "name/value items"),
        ("collection", "at most 250 characters"),
    ]
    assert set(run.params) == {"n" * 256, "start", "end"}  # nothing of a rejected call
    assert run.metrics["loss"].value == 0.5 and run.metrics["loss"].max == 0.5


@pytest.mark.integration
def test_sap_reads_see_another_process(mode: Mode, tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        "from runstream import tracking\n"
        "tracking.start_run(run_collection_name='RC9', run_name='from-child', run_id='child-1')\n"
        "for step in range(100):\n"
        "    tracking.log_metric('loss', 1.0 / (step + 1), step)\n"
        "tracking.log_metric(name='done', value=1)\n"
        "tracking.end_run()\n"
    )  # no flush: the exit handler sends what is left
    subprocess.run([sys.executable, str(script)], check=True, env={**os.environ}, timeout=120)

    def read() -> tuple[list[Any], list[dict[str, Any]]]:
        return tracking.get_runs(run_collection_name="RC9"), tracking.get_metrics_history(
            run="child-1", metrics=["loss"]
        )

    runs, history = mode.run(read)
    assert [(r.run_id, r.name, r.status) for r in runs] == [("child-1", "from-child", "FINISHED")]
    assert runs[0].collection == "RC9" and runs[0].metrics["done"].value == 1.0
    assert [p["step"] for p in history[0]["values"]] == list(range(100))
    assert history[0]["values"][-1]["value"] == pytest.approx(0.01)
