"""MLflow's model registry over a Runstream URI: not served, and said so clearly.

The registry store is built (``mlflow server`` builds it at start), and every call on it
raises the same :class:`MlflowException` (FEATURE_DISABLED) naming the alternatives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

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


class NotServedRegistry:
    """A model-registry store whose every method raises :func:`not_served`."""

    def __init__(self, store_uri: str) -> None:
        self.store_uri = store_uri

    def __getattr__(self, name: str) -> Callable[..., NoReturn]:
        if name.startswith("__"):
            raise AttributeError(name)

        def refuse(*args: Any, **kwargs: Any) -> NoReturn:
            raise not_served(self.store_uri)

        return refuse
