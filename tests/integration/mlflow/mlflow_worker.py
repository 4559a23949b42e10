"""Unchanged MLflow code, run in a process of its own by the tests: only MLFLOW_TRACKING_URI
(and Runstream's usual RUNSTREAM_* settings) point it at Runstream. ``write`` logs and prints
the run ids as JSON; ``read`` reads them back through MlflowClient and prints what it saw."""

from __future__ import annotations

import json
import sys

import mlflow
import mlflow.sklearn
from mlflow import MlflowClient


def _model() -> object:
    from sklearn.linear_model import LinearRegression

    return LinearRegression().fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0])


def write(experiment: str) -> dict[str, object]:
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_params({"lr": 0.01, "optimizer": "adam"})
        for step in range(200):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.5, "f1": 0.25}, step=199, synchronous=False)
        mlflow.set_tag("team", "vision")
        mlflow.log_text("hello", "notes/hello.txt")
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("acc", 0.75)
        mlflow.sklearn.log_model(_model(), name="clf")
        seen_inside = MlflowClient().get_run(parent.info.run_id).data.metrics.get("loss")
    return {
        "parent": parent.info.run_id,
        "child": child.info.run_id,
        "seen_inside": seen_inside,
        "experiment_id": parent.info.experiment_id,
    }


def read(experiment: str, parent: str, child: str) -> dict[str, object]:
    client = MlflowClient()
    got = client.get_run(parent)
    found = mlflow.search_runs(
        experiment_names=[experiment], filter_string="metrics.acc > 0.6", output_format="list"
    )
    return {
        "status": got.info.status,
        "params": got.data.params,
        "tags_team": got.data.tags.get("team"),
        "loss_points": len(client.get_metric_history(parent, "loss")),
        "acc": got.data.metrics.get("acc"),
        "child_parent": client.get_run(child).data.tags.get("mlflow.parentRunId"),
        "search": [r.info.run_id for r in found],
        "artifacts": [f.path for f in client.list_artifacts(parent, "notes")],
        "text": mlflow.artifacts.load_text(f"runs:/{parent}/notes/hello.txt"),
        "prediction": float(mlflow.sklearn.load_model(f"runs:/{parent}/clf").predict([[3.0]])[0]),
    }


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    result = write(*args) if command == "write" else read(*args)
    print(json.dumps(result))
