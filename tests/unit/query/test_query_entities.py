"""Experiment and logged-model streams (event_batch v4) are never runs; deleted runs are read on
request; entity_states lists a prefix's streams, deleted ones too."""

from __future__ import annotations

from pathlib import Path

import pytest

from runstream.contract import (
    ExperimentCreated,
    ExperimentDeleted,
    LoggedModelCreated,
    RunDeleted,
    RunRestored,
    TagSet,
)
from runstream.contract.identifiers import (
    EXPERIMENT_STREAM_PREFIX,
    MODEL_STREAM_PREFIX,
    experiment_stream,
    model_stream,
)
from runstream.core.settings import Settings
from runstream.query import QueryEngine, RunNotFoundError
from runstream.tracking import Client


def test_entity_streams_are_not_runs_and_deleted_runs_are_read_on_request(tmp_path: Path) -> None:
    settings = Settings.resolve(f"file://{tmp_path / 'log'}", str(tmp_path / "store"), environ={})
    client = Client(settings=settings)
    client.record(experiment_stream("7"), [ExperimentCreated("vision"), TagSet("team", "a")])
    client.record(experiment_stream("8"), [ExperimentCreated("gone")])
    client.record(experiment_stream("8"), [ExperimentDeleted()], time_us=2**60)
    client.record(model_stream("m-1"), [LoggedModelCreated("clf", "7", "run-a", "sklearn")])
    client.start_run(run_id="run-a", collection="7", capture_code=False).end()
    client.start_run(run_id="run-b", collection="7", capture_code=False).end()
    client.record("run-b", [RunDeleted()], time_us=2**60)
    client.flush()
    with QueryEngine.from_settings(settings) as engine:
        assert [r.run_id for r in engine.search_runs()] == ["run-a"]
        assert [r.run_id for r in engine.search_runs(deleted=True)] == ["run-b"]
        assert {r.run_id for r in engine.search_runs(deleted=None)} == {"run-a", "run-b"}
        with pytest.raises(RunNotFoundError):
            engine.get_run("run-b")
        assert engine.get_run("run-b", include_deleted=True).run_id == "run-b"
        assert engine.is_deleted("run-b") and not engine.is_deleted("run-a")
        with pytest.raises(RunNotFoundError):
            engine.get_run(experiment_stream("7"), include_deleted=True)
        experiments = engine.entity_states(EXPERIMENT_STREAM_PREFIX)
        assert [
            (s.run_id, s.name.value if s.name else None, s.is_deleted) for s in experiments
        ] == [
            (experiment_stream("7"), "vision", False),
            (experiment_stream("8"), "gone", True),
        ]
        assert experiments[0].tags_dict() == {"team": "a"}
        (model,) = engine.entity_states(MODEL_STREAM_PREFIX)
        assert model.source_dict() == {"source_run_id": "run-a", "model_type": "sklearn"}
        assert engine.sql("SELECT count(*) AS n FROM runs").to_pylist() == [{"n": 1}]
    client.record("run-b", [RunRestored()], time_us=2**61)
    client.flush()
    with QueryEngine.from_settings(settings) as engine:
        assert {r.run_id for r in engine.search_runs()} == {"run-a", "run-b"}
    client.close()
