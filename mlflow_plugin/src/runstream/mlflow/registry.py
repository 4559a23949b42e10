"""MLflow's model registry over a Runstream URI: not served, and said so clearly."""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import FEATURE_DISABLED

MESSAGE = (
    "Runstream does not serve MLflow's model registry (registered models, versions, aliases) "
    "for {uri!r}. Load a model by its run or its logged-model id instead "
    "(mlflow.pyfunc.load_model('runs:/<run_id>/<path>') or 'models:/<model_id>'), or point "
    "MLFLOW_REGISTRY_URI at a registry MLflow serves (e.g. sqlite:///registry.db) while "
    "MLFLOW_TRACKING_URI stays on Runstream."
)


def not_served(uri: str) -> MlflowException:
    """The error every registry call over a Runstream URI raises (error code FEATURE_DISABLED)."""
    return MlflowException(MESSAGE.format(uri=uri), error_code=FEATURE_DISABLED)
