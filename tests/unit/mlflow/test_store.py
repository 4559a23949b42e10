"""Unchanged MLflow calls against the Runstream tracking store in embedded mode
(``runstream+file://``), read back through MLflow's client and through Runstream's query
layer (a reader that is not the plugin)."""

from __future__ import annotations

import math
import uuid

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException
from mlflow.store.tracking.abstract_store import AbstractStore
from mlflow.tracking._tracking_service.utils import _get_store

from runstream.core.settings import Settings
from runstream.mlflow.store import RunstreamStore
from runstream.query import QueryEngine


def name() -> str:
    return f"exp-{uuid.uuid4().hex[:8]}"


def test_the_scheme_reaches_the_runstream_store(tracking_uri: str) -> None:
    assert isinstance(_get_store(tracking_uri), RunstreamStore)


def test_experiments_create_get_rename_delete_restore_tag(client: MlflowClient) -> None:
    assert client.get_experiment("0").name == "Default"
    assert client.get_experiment_by_name("Default").experiment_id == "0"
    first = name()
    experiment_id = client.create_experiment(first, tags={"team": "vision"})
    assert client.get_experiment(experiment_id).tags == {"team": "vision"}
    with pytest.raises(MlflowException) as taken:
        client.create_experiment(first)
    assert taken.value.error_code == "RESOURCE_ALREADY_EXISTS"
    second = name()
    client.rename_experiment(experiment_id, second)
    assert client.get_experiment_by_name(second).experiment_id == experiment_id
    assert client.get_experiment_by_name(first) is None
    client.set_experiment_tag(experiment_id, "stage", "dev")
    assert client.get_experiment(experiment_id).tags == {"team": "vision", "stage": "dev"}
    client.delete_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    active = {e.experiment_id for e in client.search_experiments()}
    deleted = {e.experiment_id for e in client.search_experiments(ViewType.DELETED_ONLY)}
    assert experiment_id not in active and experiment_id in deleted
    client.restore_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"
    found = client.search_experiments(filter_string=f"name = '{second}'")
    assert [e.experiment_id for e in found] == [experiment_id]
    with pytest.raises(MlflowException) as missing:
        client.get_experiment("12345")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_the_same_name_gives_the_same_id_in_two_stores(tmp_path: object, tracking_uri: str) -> None:
    # An id derived from the name: two processes creating one name at once end with one.
    from runstream.mlflow.store import derived_experiment_id

    assert derived_experiment_id("a") == derived_experiment_id("a") != derived_experiment_id("b")
    mlflow.set_experiment("shared-name")
    assert mlflow.get_experiment_by_name("shared-name").experiment_id == derived_experiment_id(
        "shared-name"
    )


def test_fluent_run_logs_and_reads_back_through_mlflow_and_runstream(
    tracking_uri: str, runstream_settings: Settings
) -> None:
    experiment = mlflow.set_experiment(name())
    with mlflow.start_run(run_name="baseline") as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"optimizer": "adam", "layers": 3})
        for step in range(50):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metric("weird", math.nan)
        mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=3)
        mlflow.set_tags({"team": "vision", "seed": 7})
        run_id = run.info.run_id
    got = mlflow.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "baseline"
    assert got.info.experiment_id == experiment.experiment_id
    assert got.info.end_time is not None and got.info.start_time <= got.info.end_time
    assert got.data.params == {"lr": "0.01", "optimizer": "adam", "layers": "3"}
    assert got.data.metrics["loss"] == pytest.approx(1 / 50)
    assert math.isnan(got.data.metrics["weird"])
    assert got.data.tags["team"] == "vision" and got.data.tags["mlflow.runName"] == "baseline"
    history = MlflowClient().get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(50))
    with QueryEngine.from_settings(runstream_settings) as engine:
        read = engine.get_run(run_id)
        assert read.params["lr"] == "0.01"
        assert read.collection == experiment.experiment_id
        assert engine.get_metric_history(run_id, "loss").num_rows == 50
        assert engine.sql(
            "SELECT count(*) AS n FROM metric_history WHERE run_id = ? AND key = 'loss'", [run_id]
        ).to_pylist() == [{"n": 50}]


def test_metric_history_is_paged_and_keeps_equal_duplicates(client: MlflowClient) -> None:
    run = client.create_run("0")
    run_id = run.info.run_id
    client.log_batch(
        run_id, metrics=[Metric("m", float(i), 1_700_000_000_000, i) for i in range(7)]
    )
    client.log_metric(run_id, "m", 3.0, timestamp=1_700_000_000_000, step=3)  # an equal repeat
    store = _get_store(client.tracking_uri)
    first = store.get_metric_history(run_id, "m", max_results=5)
    assert len(first) == 5 and first.token is not None
    rest = store.get_metric_history(run_id, "m", max_results=5, page_token=first.token)
    assert len(rest) == 3 and rest.token is None
    assert [m.step for m in [*first, *rest]] == [0, 1, 2, 3, 3, 4, 5, 6]
    assert len(client.get_metric_history(run_id, "m")) == 8
    assert client.get_metric_history(run_id, "nothing") == []
    with pytest.raises(MlflowException) as missing:
        client.get_metric_history("f" * 32, "m")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_params_are_immutable_as_in_mlflow(client: MlflowClient) -> None:
    run_id = client.create_run("0").info.run_id
    client.log_param(run_id, "lr", "0.1")
    client.log_param(run_id, "lr", "0.1")  # the same value again is fine
    with pytest.raises(MlflowException) as changed:
        client.log_param(run_id, "lr", "0.2")
    assert changed.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Changing param values is not allowed" in changed.value.message


def test_log_batch_keeps_mlflows_limits_and_messages(client: MlflowClient) -> None:
    run_id = client.create_run("0").info.run_id
    store = _get_store(client.tracking_uri)
    too_many = [Metric("m", 1.0, 1_700_000_000_000, i) for i in range(1001)]
    cases = [
        ({"metrics": too_many}, "A batch logging request can contain at most 1000 metrics"),
        ({"params": [Param(f"p{i}", "v") for i in range(101)]}, "at most 100 params"),
        ({"tags": [RunTag(f"t{i}", "v") for i in range(101)]}, "at most 100 tags"),
        ({"params": [Param("p", "a"), Param("p", "b")]}, "Duplicate parameter keys"),
        ({"metrics": [Metric("bad\x00key", 1.0, 1, 0)]}, "Names may only contain alphanumerics"),
    ]
    for batch, message in cases:
        kwargs = {"metrics": [], "params": [], "tags": [], **batch}
        with pytest.raises(MlflowException) as refused:
            store.log_batch(run_id, **kwargs)
        assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
        assert message in refused.value.message
    store.log_batch(run_id, [], [Param("long", "x" * 6001)], [])  # MLflow 3 truncates, warns
    assert client.get_run(run_id).data.params["long"] == "x" * 6000


def test_runs_resume_nest_rename_delete_and_restore(client: MlflowClient) -> None:
    mlflow.set_experiment(name())
    with (
        mlflow.start_run(run_name="parent") as parent,
        mlflow.start_run(run_name="child", nested=True) as child,
    ):
        mlflow.log_metric("x", 1.0)
    child_run = client.get_run(child.info.run_id)
    assert child_run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    with mlflow.start_run(run_id=child.info.run_id):  # resume
        assert client.get_run(child.info.run_id).info.status == "RUNNING"
        mlflow.log_metric("x", 2.0, step=1)
        mlflow.set_tag("mlflow.runName", "renamed")
    resumed = client.get_run(child.info.run_id)
    assert resumed.info.status == "FINISHED" and resumed.info.run_name == "renamed"
    assert resumed.data.metrics["x"] == 2.0
    with pytest.raises(MlflowException) as unknown:
        mlflow.start_run(run_id="0" * 32)
    assert unknown.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.delete_run(child.info.run_id)
    assert client.get_run(child.info.run_id).info.lifecycle_stage == "deleted"
    experiment_id = child_run.info.experiment_id
    live = client.search_runs([experiment_id])
    gone = client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in live] == [parent.info.run_id]
    assert [r.info.run_id for r in gone] == [child.info.run_id]
    client.restore_run(child.info.run_id)
    assert client.get_run(child.info.run_id).info.lifecycle_stage == "active"
    assert len(client.search_runs([experiment_id])) == 2


def test_search_runs_with_mlflows_grammar_and_order(tracking_uri: str) -> None:
    experiment = mlflow.set_experiment(name())
    for index in range(6):
        with mlflow.start_run(run_name=f"run-{index}"):
            mlflow.log_param("lr", str(index / 10))
            mlflow.log_metric("acc", index / 10)
            mlflow.set_tag("parity", "even" if index % 2 == 0 else "odd")
    ids = [experiment.experiment_id]
    frame = mlflow.search_runs(
        ids,
        filter_string="metrics.acc >= 0.2 and tags.parity = 'even'",
        order_by=["metrics.acc DESC"],
    )
    assert list(frame["tags.mlflow.runName"]) == ["run-4", "run-2"]
    names = [
        r.info.run_name
        for r in MlflowClient().search_runs(
            ids,
            "attributes.run_name LIKE 'run-%' and params.lr != '0.0'",
            order_by=["attributes.run_name ASC"],
        )
    ]
    assert names == ["run-1", "run-2", "run-3", "run-4", "run-5"]
    page = MlflowClient().search_runs(ids, max_results=4, order_by=["metrics.acc ASC"])
    assert [r.info.run_name for r in page] == ["run-0", "run-1", "run-2", "run-3"]
    rest = MlflowClient().search_runs(
        ids, max_results=4, page_token=page.token, order_by=["metrics.acc ASC"]
    )
    assert [r.info.run_name for r in rest] == ["run-4", "run-5"] and rest.token is None
    with pytest.raises(MlflowException) as bad:
        mlflow.search_runs(ids, filter_string="metrics.acc >>> 1")
    assert bad.value.error_code == "INVALID_PARAMETER_VALUE"
    quoted = mlflow.search_runs(ids, filter_string="tags.parity = 'x'' OR 1=1 --'")
    assert quoted.empty


def test_async_logging_returns_at_once_and_flushes(client: MlflowClient) -> None:
    run_id = client.create_run("0").info.run_id
    operations = client.log_batch(
        run_id, metrics=[Metric("m", 1.0, 1_700_000_000_000, 0)], synchronous=False
    )
    operations.wait()
    mlflow.flush_async_logging()
    assert client.get_run(run_id).data.metrics == {"m": 1.0}


def test_the_model_registry_is_not_served_and_says_what_to_do(tracking_uri: str) -> None:
    with pytest.raises(MlflowException) as refused:
        MlflowClient().search_registered_models()
    assert "does not serve MLflow's model registry" in str(refused.value)
    assert "runs:/" in str(refused.value)


OVERRIDDEN = {
    # marked abstract in MLflow
    "search_experiments", "create_experiment", "get_experiment", "delete_experiment",
    "restore_experiment", "rename_experiment", "get_run", "update_run_info", "create_run",
    "delete_run", "restore_run", "get_metric_history", "_search_runs", "log_batch",
    "log_inputs", "link_traces_to_run",
    # docstring-only, but the client calls them
    "get_experiment_by_name", "set_experiment_tag", "delete_experiment_tag", "delete_tag",
    # the hot path and async logging
    "log_metric", "log_param", "set_tag", "log_batch_async", "log_metric_async",
    "log_param_async", "set_tag_async", "flush_async_logging", "shut_down_async_logging",
    "end_async_logging",
    # MLflow 3's logged models (answered with a clear error today)
    "create_logged_model", "get_logged_model", "finalize_logged_model",
    "search_logged_models", "log_outputs", "set_logged_model_tags",
    "delete_logged_model_tag", "delete_logged_model", "record_logged_model",
}  # fmt: skip


def test_every_method_the_client_calls_is_overridden() -> None:
    # MLflow does not enforce its abstract methods: a missing one silently returns None.
    missing = {
        m for m in OVERRIDDEN if getattr(RunstreamStore, m) is getattr(AbstractStore, m, None)
    }
    assert missing == set()
    assert all(m in vars(RunstreamStore) for m in OVERRIDDEN)


def _log_in_child(uri: str, run_id: str) -> None:
    MlflowClient(uri).log_metric(run_id, "child", 2.0, step=1)


def test_a_forked_worker_logs_and_the_parent_reads_it_after_it_exits(
    client: MlflowClient,
) -> None:
    import multiprocessing

    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "parent", 1.0)
    assert client.get_run(run_id).data.metrics == {"parent": 1.0}  # the parent has read
    process = multiprocessing.get_context("fork").Process(
        target=_log_in_child, args=(client.tracking_uri, run_id)
    )
    process.start()
    process.join(60)
    assert process.exitcode == 0
    assert client.get_run(run_id).data.metrics == {"parent": 1.0, "child": 2.0}


def test_the_server_backend_variable_is_mlflows() -> None:
    # Copied (importing mlflow.server costs ~2.5 s at every store build); this keeps it true.
    from mlflow.server.constants import BACKEND_STORE_URI_ENV_VAR

    from runstream.mlflow.store import _SERVER_BACKEND_ENV

    assert _SERVER_BACKEND_ENV == BACKEND_STORE_URI_ENV_VAR


ENV_SCRIPT = """
import json, sys, mlflow
with mlflow.start_run() as run:
    mlflow.log_metric("a", float(sys.argv[1]), step=int(sys.argv[1]))
print(json.dumps([run.info.run_id, run.info.experiment_id]))
"""


def _unchanged(env: dict[str, str], step: int) -> list[str]:
    import json
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", ENV_SCRIPT, str(step)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 or not done.stdout, done.stderr[-2000:]
    return json.loads(done.stdout) if done.returncode == 0 else [done.stderr]  # type: ignore[no-any-return]


def test_experiment_and_run_from_mlflows_environment_variables(client: MlflowClient) -> None:
    experiment = name()
    run_id, experiment_id = _unchanged({"MLFLOW_EXPERIMENT_NAME": experiment}, 1)
    assert client.get_experiment_by_name(experiment).experiment_id == experiment_id
    resumed = _unchanged({"MLFLOW_EXPERIMENT_ID": experiment_id, "MLFLOW_RUN_ID": run_id}, 2)
    assert resumed == [run_id, experiment_id]
    assert [m.value for m in client.get_metric_history(run_id, "a")] == [1.0, 2.0]
    (error,) = _unchanged({"MLFLOW_EXPERIMENT_ID": "424242"}, 3)
    assert "RESOURCE_DOES_NOT_EXIST" in error or "No Experiment with id=424242" in error
