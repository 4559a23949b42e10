"""Runstream's producer SDK: log runs, params, metrics, tags and log lines to Kafka, a local
log, or nowhere (``noop://``), without making the training loop wait.

Fluent use (the active run lives in a context variable)::

    import runstream.tracking as rs
    with rs.start_run(run_name="baseline", tags={"team": "vision"}):
        rs.log_params({"optim": {"lr": 1e-3}})
        for step in range(1000):
            rs.log_metric("loss", loss, step=step)

Explicit use: ``Client(tracking_uri).start_run(...)`` returns a :class:`Run` with the same
methods. Files go with the run: ``log_artifact``, ``log_text``, ``log_dict``, ``log_figure``,
``log_model`` (and ``load_model`` to read a model back). Errors derive from
:class:`SdkError` (see ``runstream.tracking.exceptions``).
"""

from runstream.tracking.client import Client
from runstream.tracking.exceptions import (
    ArtifactError,
    FlushError,
    ModelError,
    NoActiveRunError,
    ReadUnavailableError,
    RunEndedError,
    SdkError,
    SinkError,
    ValidationError,
)
from runstream.tracking.experiment import Experiment
from runstream.tracking.fluent import (
    active_run,
    delete_run,
    delete_runs,
    end_run,
    flush,
    get_client,
    get_metrics_history,
    get_runs,
    get_tracking_uri,
    init,
    load_model,
    log,
    log_artifact,
    log_dict,
    log_figure,
    log_metric,
    log_metrics,
    log_model,
    log_param,
    log_parameters,
    log_params,
    log_tags,
    log_text,
    persist_run,
    set_labels,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
    update_run_info,
)
from runstream.tracking.run import Metrics, MetricsLogger, Params, Run
from runstream.tracking.sinks import resend_spill_files

__all__ = [
    "ArtifactError",
    "Client",
    "Experiment",
    "FlushError",
    "Metrics",
    "MetricsLogger",
    "ModelError",
    "NoActiveRunError",
    "Params",
    "ReadUnavailableError",
    "Run",
    "RunEndedError",
    "SdkError",
    "SinkError",
    "ValidationError",
    "active_run",
    "delete_run",
    "delete_runs",
    "end_run",
    "flush",
    "get_client",
    "get_metrics_history",
    "get_runs",
    "get_tracking_uri",
    "init",
    "load_model",
    "log",
    "log_artifact",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_parameters",
    "log_params",
    "log_tags",
    "log_text",
    "persist_run",
    "resend_spill_files",
    "set_labels",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
    "update_run_info",
]
