"""Runstream's reads as MLflow entities: query runs -> ``mlflow.entities.Run``, experiment
states -> ``Experiment``."""

from __future__ import annotations

import gc
from itertools import repeat
from typing import Any

from mlflow.entities import (
    Experiment,
    ExperimentTag,
    LifecycleStage,
    LoggedModel,
    LoggedModelStatus,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunTag,
)
from mlflow.utils.mlflow_tags import MLFLOW_USER
from runstream.contract.identifiers import EXPERIMENT_STREAM_PREFIX, MODEL_STREAM_PREFIX
from runstream.contract.state import RunState
from runstream.mlflow.uris import experiment_artifact_uri, model_artifact_uri, run_artifact_uri

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"


def lifecycle(deleted: bool) -> str:
    """MLflow's lifecycle stage of a deleted or live entity."""
    return LifecycleStage.DELETED if deleted else LifecycleStage.ACTIVE


def _ms(time_us: int | None) -> int | None:
    return None if time_us is None else time_us // 1000


def metrics_of_columns(
    key: str, values: list[float], timestamps: list[int], steps: list[int]
) -> list[Metric]:
    """MLflow ``Metric`` objects of one key from column lists, as MLflow's stores build them
    (model id, dataset and run id None), built in C through ``map`` with the cyclic garbage
    collector paused: a million new objects otherwise trigger collections that cost about
    three times the construction itself (none of them can be garbage while we build)."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        return list(map(Metric, repeat(key), values, timestamps, steps))
    finally:
        if paused:
            gc.enable()


def run_entity(run: Any, deleted: bool) -> Run:
    """The MLflow run of a query ``Run`` (its collection is the experiment id)."""
    info = RunInfo(
        run_id=run.run_id,
        experiment_id=run.collection or DEFAULT_EXPERIMENT_ID,
        user_id=run.tags.get(MLFLOW_USER, ""),
        status=run.status or "RUNNING",
        start_time=_ms(run.start_time_us) or 0,
        end_time=_ms(run.end_time_us) if run.status != "RUNNING" else None,
        lifecycle_stage=lifecycle(deleted),
        artifact_uri=run_artifact_uri(run.run_id),
        run_name=run.name or "",
    )
    data = RunData(
        metrics=[Metric(k, m.value, m.timestamp, m.step) for k, m in run.metrics.items()],
        params=[Param(k, v) for k, v in run.params.items()],
        tags=[RunTag(k, v) for k, v in run.tags.items()],
    )
    return Run(run_info=info, run_data=data)


def experiment_id_of(state: RunState) -> str:
    """The experiment id of an experiment stream's state."""
    return state.run_id[len(EXPERIMENT_STREAM_PREFIX) :]


def experiment_entity(state: RunState | None, experiment_id: str) -> Experiment:
    """The MLflow experiment of an experiment stream's state (None: the default experiment
    before any event of its own)."""
    if state is None:
        name, deleted, tags, created = DEFAULT_EXPERIMENT_NAME, False, {}, None
    else:
        name = state.name.value if state.name is not None else DEFAULT_EXPERIMENT_NAME
        deleted, tags, created = state.is_deleted, state.tags_dict(), _ms(state.start_time_us)
    updated = None if state is None or state.started is None else state.started[0] // 1000
    if state is not None and state.deleted is not None:
        updated = max(updated or 0, state.deleted.order[0] // 1000)
    return Experiment(
        experiment_id=experiment_id,
        name=name,
        artifact_location=experiment_artifact_uri(experiment_id),
        lifecycle_stage=lifecycle(deleted),
        tags=[ExperimentTag(k, v) for k, v in tags.items()],
        creation_time=created,
        last_update_time=updated,
    )


def model_id_of(state: RunState) -> str:
    """The logged-model id of a model stream's state."""
    return state.run_id[len(MODEL_STREAM_PREFIX) :]


def model_entity(state: RunState) -> LoggedModel:
    """The MLflow logged model of a model stream's state."""
    model_id = model_id_of(state)
    created = _ms(state.start_time_us) or 0
    updated = max(
        [created]
        + [r.order[0] // 1000 for r in (state.status, state.name) if r is not None]
        + [r.order[0] // 1000 for r in state.tags.values()]
    )
    status = state.status_value or "PENDING"
    source = state.source_dict()
    return LoggedModel(
        experiment_id=state.collection.value if state.collection is not None else "0",
        model_id=model_id,
        name=state.name.value if state.name is not None else model_id,
        artifact_location=model_artifact_uri(model_id),
        creation_timestamp=created,
        last_updated_timestamp=updated,
        model_type=source.get("model_type"),
        source_run_id=source.get("source_run_id"),
        status=LoggedModelStatus.__members__.get(status, LoggedModelStatus.UNSPECIFIED),
        tags=state.tags_dict(),
        params=state.params_dict(),
        metrics=[Metric(k, m.value, m.timestamp, m.step) for k, m in state.metrics.items()],
    )
