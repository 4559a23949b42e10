"""MLflow's tracking store over Runstream: MLflow's calls become Runstream events through the
SDK's batcher (no I/O on the caller's thread), and MLflow's reads are answered by the query
layer after a flush of this process's own events (read-your-writes).

- An experiment is a stream of its own (``experiment-stream.<id>``) of experiment events; its
  id is derived from its name, so two processes creating one name end with one experiment.
  Experiment ``"0"`` (``Default``) always exists.
- A run's collection is its experiment id; ``mlflow.runName`` is its name.
- Params are immutable, as in MLflow: this process remembers the params it logged or read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future
from operator import attrgetter
from typing import Any

from mlflow.entities import (
    Experiment,
    LoggedModel,
    LoggedModelStatus,
    Metric,
    Param,
    Run,
    RunStatus,
    RunTag,
    ViewType,
)
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    FEATURE_DISABLED,
    INVALID_PARAMETER_VALUE,
    INVALID_STATE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
)
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.tracking import SEARCH_MAX_RESULTS_DEFAULT, SEARCH_MAX_RESULTS_THRESHOLD
from mlflow.store.tracking.abstract_store import AbstractStore
from mlflow.utils.async_logging.run_operations import RunOperations
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME, MLFLOW_USER
from mlflow.utils.name_utils import _generate_random_name
from mlflow.utils.search_utils import SearchExperimentsUtils
from mlflow.utils.validation import (
    _validate_batch_log_data,
    _validate_batch_log_limits,
    _validate_experiment_name,
    _validate_metric,
    _validate_param_keys_unique,
    _validate_run_id,
)
from runstream.contract.events import (
    ExperimentCreated,
    ExperimentDeleted,
    ExperimentRenamed,
    ExperimentRestored,
    LoggedModelCreated,
    LoggedModelFinalized,
    ParamLogged,
    Payload,
    RunDeleted,
    RunEnded,
    RunRestored,
    RunStarted,
    RunUpdated,
    TagSet,
)
from runstream.contract.identifiers import (
    EXPERIMENT_STREAM_PREFIX,
    MODEL_STREAM_PREFIX,
    experiment_stream,
    model_stream,
)
from runstream.contract.state import RunState
from runstream.core.errors import RunstreamError
from runstream.core.settings import Settings
from runstream.mlflow.entities import (
    DEFAULT_EXPERIMENT_ID,
    experiment_entity,
    experiment_id_of,
    metrics_of_columns,
    model_entity,
    model_id_of,
    run_entity,
)
from runstream.mlflow.search import run_filter, run_order
from runstream.mlflow.uris import model_artifact_uri, runstream_tracking_uri
from runstream.tracking import Client
from runstream.tracking import Run as Handle

logger = logging.getLogger(__name__)

_END_STATUSES = {"FINISHED", "FAILED", "KILLED"}
_Columns = tuple[list[Any], list[Any], list[Any], list[Any], list[Any], set[Any]]
_PUBLIC_COLUMNS = tuple(map(attrgetter, ("key", "value", "step", "timestamp", "model_id")))
_PRIVATE_COLUMNS = tuple(map(attrgetter, ("_key", "_value", "_step", "_timestamp", "_model_id")))
"""A batch of MLflow ``Metric`` as columns, read in C (the private attributes its properties
return: half the cost of the properties; any other object is read through the properties)."""
_MAX_REMEMBERED_KEYS = 100_000
_MAX_PAGED_HISTORIES = 4
"""Metric histories (built ``Metric`` lists) kept between the pages of one
``get_metric_history`` paging; older, abandoned pagings are dropped."""
_SERVER_BACKEND_ENV = "_MLFLOW_SERVER_FILE_STORE"
"""Where ``mlflow server`` passes ``--backend-store-uri`` to its workers (mlflow.server)."""


def _error(error: RunstreamError) -> MlflowException:
    """A Runstream error as MLflow's (INVALID_PARAMETER_VALUE: the call's input was refused)."""
    return MlflowException(str(error), INVALID_PARAMETER_VALUE)


def _run_not_found(run_id: str) -> MlflowException:
    return MlflowException(f"Run with id={run_id} not found", RESOURCE_DOES_NOT_EXIST)


def _experiment_not_found(experiment_id: str) -> MlflowException:
    return MlflowException(f"No Experiment with id={experiment_id} exists", RESOURCE_DOES_NOT_EXIST)


def derived_experiment_id(name: str, attempt: int = 0) -> str:
    """The experiment id of ``name`` (the ``attempt``-th, when an earlier one is taken by an
    experiment renamed since): 15 decimal digits of its sha256, never ``"0"``."""
    text = name if attempt == 0 else f"{name}\0{attempt}"
    number = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % 10**15
    return str(max(number, 1))


def _page_offset(page_token: str | bytes | None) -> int:
    if not page_token:
        return 0
    try:
        offset = json.loads(base64.b64decode(page_token))["offset"]
    except (ValueError, KeyError, TypeError) as error:
        raise MlflowException(
            f"Invalid page token {page_token!r}", INVALID_PARAMETER_VALUE
        ) from error
    if not isinstance(offset, int) or offset < 0:
        raise MlflowException(f"Invalid page token {page_token!r}", INVALID_PARAMETER_VALUE)
    return offset


def _page_token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def _all_none(column: list[Any]) -> bool:
    """True when every item of ``column`` is None (counted in C, by identity first)."""
    return column.count(None) == len(column)


def _done() -> RunOperations:
    future: Future[None] = Future()
    future.set_result(None)
    return RunOperations([future])


class _Reads:
    """The query engine, its read errors (log or store unreachable, a topic missing) raised as
    MlflowException; the query layer's own answers (run not found, bad filter) pass through."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._engine, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            from runstream.query.exceptions import QueryError

            try:
                return method(*args, **kwargs)
            except QueryError:
                raise
            except RunstreamError as error:
                raise MlflowException(f"Runstream could not read: {error}") from error

        return call


class RunstreamStore(AbstractStore):
    """MLflow's ``AbstractStore`` over a Runstream tracking URI.

    Args:
        store_uri: ``runstream+file:///path`` or ``runstream+kafka://host:9092[,…]``.
        artifact_uri: ignored (artifacts go to the Runstream store of ``RUNSTREAM_STORE``).

    Raises:
        MlflowException: the URI or a Runstream setting is malformed.
    """

    def __init__(self, store_uri: str, artifact_uri: str | None = None) -> None:
        super().__init__()
        self.store_uri = store_uri
        try:
            self.settings = Settings.resolve(runstream_tracking_uri(store_uri))
        except RunstreamError as error:
            raise _error(error) from error
        self.client = Client(settings=self.settings)
        # Behind `mlflow server` a REST write must be stored when the call returns (as MLflow's
        # SQL store does), and several workers each hold a store: flush after every write.
        self.durable = os.environ.get(_SERVER_BACKEND_ENV) == store_uri
        self._lock = threading.Lock()
        self._handles: dict[str, Handle] = {}
        self._params: dict[str, dict[str, str]] = {}
        self._deleted: set[str] = set()
        self._pages: dict[tuple[str, str], Any] = {}
        self._metric_keys: set[str] = set()  # metric keys MLflow's rules accepted

    # -- helpers -----------------------------------------------------------------------------

    def _handle(self, run_id: str) -> Handle:
        handle = self._handles.get(run_id)
        if handle is None:
            if run_id in self._deleted:
                raise MlflowException(
                    f"The run {run_id} must be in the 'active' state. Current state is deleted.",
                    INVALID_STATE,
                )
            try:
                handle = self.client.attach(run_id)
            except RunstreamError as error:
                raise _error(error) from error
            with self._lock:
                handle = self._handles.setdefault(run_id, handle)
        return handle

    def artifact_handle(self, run_id: str) -> Handle:
        """The SDK handle the artifact repository stores run ``run_id``'s files with (open
        after the run ended: MLflow logs artifacts to finished runs too).

        Raises:
            MlflowException: the run id is unsafe, or the run is deleted here.
        """
        return self._handle(run_id)

    def artifact_reader(self) -> Any:
        """The query engine, after this process's uploads and events are flushed.

        Raises:
            MlflowException: Runstream could not flush or read.
        """
        return self._reader()

    def _record(self, stream_id: str, payloads: Sequence[Payload]) -> None:
        try:
            self.client.record(stream_id, payloads)
        except RunstreamError as error:
            raise _error(error) from error
        if self.durable:
            self._flush()

    def _reader(self) -> Any:
        try:
            return _Reads(self.client.reader())
        except RunstreamError as error:
            raise MlflowException(f"Runstream could not read: {error}") from error

    def _experiment_states(self) -> dict[str, RunState]:
        return {
            experiment_id_of(s): s for s in self._reader().entity_states(EXPERIMENT_STREAM_PREFIX)
        }

    def _remember_params(self, run_id: str, params: dict[str, str]) -> None:
        with self._lock:
            known = self._params.setdefault(run_id, {})
            for key, value in params.items():
                known.setdefault(key, value)

    # -- experiments --------------------------------------------------------------------------

    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Any]:
        """Experiments matching MLflow's experiment filter, paged (MLflow's own filter and sort
        over the experiment list, which is small)."""
        if not isinstance(max_results, int) or not 1 <= max_results <= 50_000:
            raise MlflowException(
                f"Invalid value {max_results} for parameter 'max_results' supplied. It must be "
                "a positive integer at most 50000",
                INVALID_PARAMETER_VALUE,
            )
        states = self._experiment_states()
        experiments = [experiment_entity(s, i) for i, s in states.items()]
        if DEFAULT_EXPERIMENT_ID not in states:
            experiments.append(experiment_entity(None, DEFAULT_EXPERIMENT_ID))
        wanted = ViewType.ALL if view_type is None else view_type
        experiments = [
            e
            for e in experiments
            if wanted == ViewType.ALL
            or (wanted == ViewType.ACTIVE_ONLY) == (e.lifecycle_stage == "active")
        ]
        filtered = SearchExperimentsUtils.filter(experiments, filter_string)
        ordered = SearchExperimentsUtils.sort(
            filtered, order_by or ["last_update_time DESC", "experiment_id"]
        )
        offset = _page_offset(page_token)
        page = ordered[offset : offset + max_results]
        more = offset + max_results < len(ordered)
        return PagedList(page, _page_token(offset + max_results) if more else None)

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: list[Any] | None = None
    ) -> str:
        """Create experiment ``name`` (its id derived from the name) and return its id.

        Raises:
            MlflowException: RESOURCE_ALREADY_EXISTS when the name is taken (deleted
                experiments keep their names), INVALID_PARAMETER_VALUE for a bad name or tag.
        """
        _validate_experiment_name(name)
        states = self._experiment_states()
        for experiment_id, state in states.items():
            if state.name is not None and state.name.value == name:
                raise MlflowException(
                    f"Experiment(name={name}) already exists. Error: experiment "
                    f"{experiment_id} has this name",
                    RESOURCE_ALREADY_EXISTS,
                )
        if name == "Default" and DEFAULT_EXPERIMENT_ID not in states:
            raise MlflowException(
                "Experiment(name=Default) already exists.", RESOURCE_ALREADY_EXISTS
            )
        attempt = 0
        while (experiment_id := derived_experiment_id(name, attempt)) in states:
            attempt += 1
        events: list[Payload] = [ExperimentCreated(name)]
        events += [TagSet(tag.key, str(tag.value)) for tag in tags or ()]
        self._record(experiment_stream(experiment_id), events)
        return experiment_id

    def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment ``experiment_id`` (deleted ones too).

        Raises:
            MlflowException: RESOURCE_DOES_NOT_EXIST.
        """
        experiment_id = str(experiment_id)
        states = self._experiment_states()
        state = states.get(experiment_id)
        if state is None and experiment_id != DEFAULT_EXPERIMENT_ID:
            raise _experiment_not_found(experiment_id)
        return experiment_entity(state, experiment_id)

    def get_experiment_by_name(self, experiment_name: str) -> Experiment | None:
        """The experiment named ``experiment_name`` (deleted ones too), or None."""
        states = self._experiment_states()
        for experiment_id, state in states.items():
            if state.name is not None and state.name.value == experiment_name:
                return experiment_entity(state, experiment_id)
        if experiment_name == "Default" and DEFAULT_EXPERIMENT_ID not in states:
            return experiment_entity(None, DEFAULT_EXPERIMENT_ID)
        return None

    def _live_experiment(self, experiment_id: str) -> Experiment:
        experiment = self.get_experiment(experiment_id)
        if experiment.lifecycle_stage != "active":
            raise MlflowException(
                f"The experiment {experiment_id} must be in the 'active' state. "
                f"Current state is {experiment.lifecycle_stage}.",
                INVALID_PARAMETER_VALUE,
            )
        return experiment

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-delete the experiment (its runs stay; ``restore_experiment`` undoes it).

        Raises:
            MlflowException: RESOURCE_DOES_NOT_EXIST, or INVALID_PARAMETER_VALUE when it is
                already deleted.
        """
        experiment_id = str(experiment_id)
        self._live_experiment(experiment_id)
        self._record(experiment_stream(experiment_id), [ExperimentDeleted()])

    def restore_experiment(self, experiment_id: str) -> None:
        """Restore a deleted experiment.

        Raises:
            MlflowException: RESOURCE_DOES_NOT_EXIST, or INVALID_PARAMETER_VALUE when it is
                not deleted.
        """
        experiment_id = str(experiment_id)
        experiment = self.get_experiment(experiment_id)
        if experiment.lifecycle_stage != "deleted":
            raise MlflowException(
                f"Cannot restore an active experiment. Experiment id={experiment_id}",
                INVALID_PARAMETER_VALUE,
            )
        self._record(experiment_stream(experiment_id), [ExperimentRestored()])

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename the experiment.

        Raises:
            MlflowException: RESOURCE_DOES_NOT_EXIST, RESOURCE_ALREADY_EXISTS (name taken),
                INVALID_PARAMETER_VALUE (deleted, or a bad name).
        """
        _validate_experiment_name(new_name)
        experiment_id = str(experiment_id)
        self._live_experiment(experiment_id)
        if self.get_experiment_by_name(new_name) is not None:
            raise MlflowException(
                f"Experiment(name={new_name}) already exists.", RESOURCE_ALREADY_EXISTS
            )
        self._record(experiment_stream(experiment_id), [ExperimentRenamed(new_name)])

    def set_experiment_tag(self, experiment_id: str, tag: Any) -> None:
        """Set a tag of a live experiment.

        Raises:
            MlflowException: RESOURCE_DOES_NOT_EXIST or INVALID_PARAMETER_VALUE.
        """
        experiment_id = str(experiment_id)
        self._live_experiment(experiment_id)
        self._record(experiment_stream(experiment_id), [TagSet(tag.key, str(tag.value))])

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Not served: the event contract has no tag deletion yet.

        Raises:
            MlflowException: FEATURE_DISABLED, always.
        """
        raise _no_tag_deletion()

    # -- runs ---------------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int | None,
        tags: list[RunTag] | None,
        run_name: str | None,
    ) -> Run:
        """Start a run in a live experiment (RUNNING, tag ``mlflow.runName`` set).

        Raises:
            MlflowException: RESOURCE_DOES_NOT_EXIST (experiment), INVALID_PARAMETER_VALUE
                (deleted experiment, bad tag, name differing from the ``mlflow.runName`` tag).
        """
        experiment_id = str(experiment_id or DEFAULT_EXPERIMENT_ID)
        self._live_experiment(experiment_id)
        tag_map = {tag.key: str(tag.value) for tag in tags or ()}
        tagged_name = tag_map.get(MLFLOW_RUN_NAME)
        if run_name and tagged_name and run_name != tagged_name:
            raise MlflowException(
                "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
                f"different values (run_name='{run_name}', mlflow.runName='{tagged_name}').",
                INVALID_PARAMETER_VALUE,
            )
        name = run_name or tagged_name or _generate_random_name()
        tag_map[MLFLOW_RUN_NAME] = name
        if user_id:
            tag_map.setdefault(MLFLOW_USER, user_id)
        run_id = uuid.uuid4().hex
        start_ms = int(time.time() * 1000) if start_time is None else int(start_time)
        started = RunStarted(
            start_time_us=start_ms * 1000, name=name, collection=experiment_id, tags=tag_map
        )
        self._record(run_id, [started])
        self._remember_params(run_id, {})
        return self._local_run(run_id, experiment_id, name, start_ms, tag_map, user_id)

    def _local_run(
        self,
        run_id: str,
        experiment_id: str,
        name: str,
        start_ms: int,
        tags: dict[str, str],
        user_id: str,
    ) -> Run:
        from types import SimpleNamespace

        run = SimpleNamespace(
            run_id=run_id,
            collection=experiment_id,
            name=name,
            status="RUNNING",
            start_time_us=start_ms * 1000,
            end_time_us=None,
            tags=tags,
            params={},
            metrics={},
        )
        return run_entity(run, deleted=False)

    def get_run(self, run_id: str) -> Run:
        """The run as of now, this process's events included (deleted runs too).

        Raises:
            MlflowException: RESOURCE_DOES_NOT_EXIST.
        """
        from runstream.query.exceptions import RunNotFoundError

        _validate_run_id(run_id)
        reader = self._reader()
        try:
            run = reader.get_run(run_id, include_deleted=True)
        except RunNotFoundError as error:
            raise _run_not_found(run_id) from error
        self._remember_params(run_id, dict(run.params))
        return run_entity(run, reader.is_deleted(run_id))

    def update_run_info(
        self, run_id: str, run_status: Any, end_time: int | None, run_name: str | None
    ) -> Any:
        """Set the status (RUNNING resumes; an end status ends the run and flushes), end time
        and name; return the new RunInfo.

        Raises:
            MlflowException: INVALID_PARAMETER_VALUE for a bad status or name.
        """
        status = run_status if isinstance(run_status, str) else RunStatus.to_string(run_status)
        payloads: list[Payload] = []
        if run_name:
            payloads += [RunUpdated(name=run_name), TagSet(MLFLOW_RUN_NAME, run_name)]
        if status == "RUNNING":
            payloads.append(RunStarted(start_time_us=int(time.time() * 1e6)))
        elif status in _END_STATUSES:
            end_ms = int(time.time() * 1000) if end_time is None else int(end_time)
            payloads.append(RunEnded(status, end_ms * 1000))
        else:
            raise MlflowException(
                f"Runstream runs have no status {status!r}", INVALID_PARAMETER_VALUE
            )
        self._record(run_id, payloads)
        if status in _END_STATUSES:
            self._flush()
        return self.get_run(run_id).info

    def _flush(self) -> None:
        try:
            self.client.flush()
        except RunstreamError as error:
            raise MlflowException(f"Runstream could not flush: {error}") from error

    def delete_run(self, run_id: str) -> None:
        """Soft-delete the run (``restore_run`` undoes it).

        Raises:
            MlflowException: RESOURCE_DOES_NOT_EXIST.
        """
        self.get_run(run_id)
        self._record(run_id, [RunDeleted()])
        with self._lock:
            self._deleted.add(run_id)
            self._handles.pop(run_id, None)

    def restore_run(self, run_id: str) -> None:
        """Restore a deleted run.

        Raises:
            MlflowException: RESOURCE_DOES_NOT_EXIST.
        """
        self.get_run(run_id)
        self._record(run_id, [RunRestored()])
        with self._lock:
            self._deleted.discard(run_id)

    # -- logging ------------------------------------------------------------------------------

    def log_metric(self, run_id: str, metric: Metric) -> None:
        """Queue one metric point (NaN and ±inf kept); returns at once.

        Raises:
            MlflowException: INVALID_PARAMETER_VALUE for a bad key, value, step or timestamp.
        """
        try:
            self._handle(run_id).log_metric(metric.key, metric.value, metric.step, metric.timestamp)
        except RunstreamError as error:
            raise _error(error) from error
        if self.durable:
            self._flush()

    def log_param(self, run_id: str, param: Param) -> None:
        """Log one param (immutable: the same value again is fine).

        Raises:
            MlflowException: INVALID_PARAMETER_VALUE for a bad or changed param.
        """
        self.log_batch(run_id, [], [param], [])

    def set_tag(self, run_id: str, tag: RunTag) -> None:
        """Set one tag (``mlflow.runName`` renames the run).

        Raises:
            MlflowException: INVALID_PARAMETER_VALUE for a bad tag.
        """
        self.log_batch(run_id, [], [], [tag])

    def delete_tag(self, run_id: str, key: str) -> None:
        """Not served: the event contract has no tag deletion yet.

        Raises:
            MlflowException: FEATURE_DISABLED, always.
        """
        raise _no_tag_deletion()

    def _check_params(self, run_id: str, params: list[Param]) -> dict[str, str]:
        with self._lock:
            known = self._params.setdefault(run_id, {})
            for param in params:
                old = known.get(param.key)
                if old is not None and old != str(param.value):
                    raise MlflowException(
                        "Changing param values is not allowed. Param with key='"
                        f"{param.key}' was already logged with value='{old}' for run ID='"
                        f"{run_id}'. Attempted logging new value '{param.value}'.",
                        INVALID_PARAMETER_VALUE,
                    )
            new = {param.key: str(param.value) for param in params}
            known.update(new)
        return new

    def log_batch(
        self, run_id: str, metrics: list[Metric], params: list[Param], tags: list[RunTag]
    ) -> None:
        """Queue metrics, params and tags with MLflow's limits and messages; returns at once.

        Raises:
            MlflowException: INVALID_PARAMETER_VALUE (MLflow's validation: limits, keys,
                values, a param logged twice in the batch or changed).
        """
        _validate_run_id(run_id)
        _validate_batch_log_limits(metrics, params, tags)
        # MLflow's own validation of params and tags (few; it truncates long param values).
        _, params, tags = _validate_batch_log_data([], params, tags)
        _validate_param_keys_unique(params)
        columns = self._checked_metrics(metrics) if metrics else None
        handle = self._handle(run_id)
        new_params = self._check_params(run_id, params) if params else {}
        try:
            if new_params:
                handle.log_params(new_params)
            if tags:
                tag_map = {tag.key: str(tag.value) for tag in tags}
                handle.set_tags(tag_map)
                if MLFLOW_RUN_NAME in tag_map:
                    handle.update_run_info(run_name=tag_map[MLFLOW_RUN_NAME])
            if columns is not None:
                keys, values, steps, timestamps, model_ids, distinct = columns
                if not _all_none(model_ids):
                    self._log_model_metrics(run_id, handle, metrics)
                elif not handle.log_columns(
                    keys, values, steps, timestamps, distinct_keys=distinct
                ):
                    # not plain floats and ints: MLflow's rules first, then the SDK converts
                    _validate_batch_log_data(metrics, [], [])
                    handle.log_points(zip(keys, values, steps, timestamps, strict=True))
        except RunstreamError as error:
            if metrics:
                _validate_batch_log_data(metrics, [], [])  # MLflow's message, if it refuses
            raise _error(error) from error
        if self.durable:
            self._flush()

    def _checked_metrics(self, metrics: list[Metric]) -> _Columns:
        """The batch's metrics as columns (key, value, step, timestamp, model id) and the
        set of their keys, each key checked against MLflow's rules once (then remembered). Values, steps
        and timestamps that the SDK takes as plain (floats, ints in its ranges: timestamps
        after 1990) pass MLflow's rules too; others get MLflow's per-metric validation
        before the SDK converts them (see :meth:`log_batch`).

        Raises:
            MlflowException: INVALID_PARAMETER_VALUE, MLflow's message for the first bad key.
        """
        try:
            columns = tuple(list(map(getter, metrics)) for getter in _PRIVATE_COLUMNS)
        except AttributeError:  # not MLflow's Metric class: its public properties
            columns = tuple(list(map(getter, metrics)) for getter in _PUBLIC_COLUMNS)
        try:
            distinct = set(columns[0])
            fresh = distinct - self._metric_keys
            for key in fresh:
                _validate_metric(key, 0.0, 0, 0)
        except (TypeError, MlflowException):  # an unhashable or refused key: MLflow's words
            _validate_batch_log_data(metrics, [], [])
            raise
        if fresh and len(self._metric_keys) < _MAX_REMEMBERED_KEYS:
            self._metric_keys.update(fresh)
        return (*columns, distinct)  # type: ignore[return-value]

    def _log_model_metrics(self, run_id: str, handle: Handle, metrics: list[Metric]) -> None:
        """Metrics linked to a logged model go to the model's stream too; to the run's only
        when the run does not hold the same point yet (``log_model`` re-logs the step's run
        metrics with the model id: MLflow's SQL store keeps one row of equal points)."""
        linked = [m for m in metrics if m.model_id is not None]
        by_model: dict[str, list[Metric]] = {}
        for metric in linked:
            by_model.setdefault(str(metric.model_id), []).append(metric)
        for model_id, points in by_model.items():
            model = self._handle(model_stream(model_id))
            model.log_points([(m.key, m.value, m.step, m.timestamp) for m in points])
        reader = self._reader()
        held: dict[str, set[tuple[int, int, str]]] = {}
        for key in {m.key for m in linked}:
            table = (
                reader.get_metric_history(run_id, key) if self._run_known(reader, run_id) else None
            )
            held[key] = (
                set()
                if table is None
                else {
                    (step, stamp, repr(value))
                    for step, stamp, value in zip(
                        table["step"].to_pylist(),
                        table["timestamp"].to_pylist(),
                        table["value"].to_pylist(),
                        strict=True,
                    )
                }
            )
        fresh = [
            m
            for m in metrics
            if m.model_id is None or (m.step, m.timestamp, repr(float(m.value))) not in held[m.key]
        ]
        if fresh:
            handle.log_points([(m.key, m.value, m.step, m.timestamp) for m in fresh])

    @staticmethod
    def _run_known(reader: Any, run_id: str) -> bool:
        from runstream.query.exceptions import RunNotFoundError

        try:
            reader.get_run(run_id, include_deleted=True)
        except RunNotFoundError:
            return False
        return True

    def log_batch_async(
        self, run_id: str, metrics: list[Metric], params: list[Param], tags: list[RunTag]
    ) -> RunOperations:
        """:meth:`log_batch` (already off the caller's thread: it only enqueues)."""
        self.log_batch(run_id, metrics, params, tags)
        return _done()

    def log_metric_async(self, run_id: str, metric: Metric) -> RunOperations:
        """:meth:`log_metric`, returning a done operation."""
        self.log_metric(run_id, metric)
        return _done()

    def log_param_async(self, run_id: str, param: Param) -> RunOperations:
        """:meth:`log_param`, returning a done operation."""
        self.log_param(run_id, param)
        return _done()

    def set_tag_async(self, run_id: str, tag: RunTag) -> RunOperations:
        """:meth:`set_tag`, returning a done operation."""
        self.set_tag(run_id, tag)
        return _done()

    def flush_async_logging(self) -> None:
        """Wait until everything queued is acknowledged (or in the local log)."""
        self._flush()

    def end_async_logging(self) -> None:
        """Nothing to stop: the SDK's batcher serves every call."""

    def shut_down_async_logging(self) -> None:
        """Flush (the SDK's batcher keeps running for later calls)."""
        self._flush()

    def log_inputs(
        self, run_id: str, datasets: list[Any] | None = None, models: list[Any] | None = None
    ) -> None:
        """Record dataset inputs as run tags ``mlflow.input.<name>`` (digest, source type):
        Runstream has no dataset entity. Model inputs are not recorded."""
        tags = [
            RunTag(
                f"mlflow.input.{item.dataset.name}"[:250],
                json.dumps(
                    {
                        "digest": item.dataset.digest,
                        "source_type": item.dataset.source_type,
                        "context": [t.value for t in item.tags],
                    }
                ),
            )
            for item in datasets or ()
        ]
        if tags:
            self.log_batch(run_id, [], [], tags[:100])

    def link_traces_to_run(self, trace_ids: list[str], run_id: str) -> None:
        """Not served: Runstream does not store traces.

        Raises:
            MlflowException: FEATURE_DISABLED, always.
        """
        raise MlflowException("Runstream does not store MLflow traces", FEATURE_DISABLED)

    # -- reads --------------------------------------------------------------------------------

    def get_metric_history(
        self,
        run_id: str,
        metric_key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> PagedList[Any]:
        """Every point of the metric (equal duplicates from different events included), by
        step then timestamp, paged by ``max_results``; an unknown key gives an empty list.

        Raises:
            MlflowException: RESOURCE_DOES_NOT_EXIST for an unknown run.
        """
        from runstream.query.exceptions import RunNotFoundError

        offset = _page_offset(page_token)
        # MLflow's client pages by 25,000: the first page builds every Metric at once (the
        # garbage collector paused once, not once per page), later pages are slices of it.
        history = self._pages.get((run_id, metric_key)) if offset else None
        if history is None:
            reader = self._reader()
            try:
                reader.get_run(run_id, include_deleted=True)
                table = reader.get_metric_history(run_id, metric_key)
            except RunNotFoundError as error:
                raise _run_not_found(run_id) from error
            table = table.slice(offset)
            history = metrics_of_columns(
                metric_key,
                table["value"].to_numpy().tolist(),
                table["timestamp"].to_numpy().tolist(),
                table["step"].to_numpy().tolist(),
            )
            if offset:  # a token from another process (REST workers): pad to its offset
                history = [*([None] * offset), *history]
        total = len(history)
        end = total if max_results is None else offset + int(max_results)
        token = _page_token(end) if end < total else None
        page = history[offset:end] if offset or token else history
        with self._lock:
            if token is None:
                self._pages.pop((run_id, metric_key), None)
            else:
                self._pages[(run_id, metric_key)] = history
                while len(self._pages) > _MAX_PAGED_HISTORIES:  # abandoned pagings: oldest out
                    self._pages.pop(next(iter(self._pages)))
        return PagedList(page, token)

    def _search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str | None,
        run_view_type: int,
        max_results: int,
        order_by: list[str] | None,
        page_token: str | None,
    ) -> tuple[list[Run], str | None]:
        """Runs of ``experiment_ids`` matching MLflow's filter, in MLflow's order, paged: the
        filter and order are the query layer's bound DuckDB SQL.

        Raises:
            MlflowException: INVALID_PARAMETER_VALUE for a malformed filter, order or limit.
        """
        from runstream.query.exceptions import FilterError

        if max_results > SEARCH_MAX_RESULTS_THRESHOLD:
            raise MlflowException(
                "Invalid value for request parameter max_results. It must be at most "
                f"{SEARCH_MAX_RESULTS_THRESHOLD}, but got value {max_results}",
                INVALID_PARAMETER_VALUE,
            )
        if not experiment_ids:
            return [], None
        text = run_filter(filter_string, [str(i) for i in experiment_ids])
        order = run_order(order_by)
        offset = _page_offset(page_token)
        deleted = {ViewType.ACTIVE_ONLY: False, ViewType.DELETED_ONLY: True}.get(run_view_type)
        reader = self._reader()
        try:
            found = reader.search_runs(text, order, offset + max_results + 1, deleted=deleted)
        except FilterError as error:
            raise MlflowException(str(error), INVALID_PARAMETER_VALUE) from error
        page = found[offset : offset + max_results]
        runs = [  # the view type tells each run's deletion but for ALL (a lookup per run)
            run_entity(run, deleted if deleted is not None else reader.is_deleted(run.run_id))
            for run in page
        ]
        more = len(found) > offset + max_results
        return runs, _page_token(offset + max_results) if more else None

    # -- logged models (MLflow 3) -------------------------------------------------------------

    def _model_states(self) -> dict[str, RunState]:
        return {model_id_of(s): s for s in self._reader().entity_states(MODEL_STREAM_PREFIX)}

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: list[Any] | None = None,
        params: list[Any] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        """Create a logged model (PENDING until finalized) in a live experiment; its files go
        to ``runstream-artifacts:/models/<model_id>``.

        Raises:
            MlflowException: RESOURCE_DOES_NOT_EXIST or INVALID_PARAMETER_VALUE (experiment).
        """
        experiment_id = str(experiment_id)
        self._live_experiment(experiment_id)
        model_id = f"m-{uuid.uuid4().hex}"
        model_name = name or _generate_random_name()
        payloads: list[Payload] = [
            LoggedModelCreated(model_name, experiment_id, source_run_id, model_type),
            LoggedModelFinalized("PENDING"),
        ]
        payloads += [TagSet(t.key, str(t.value)) for t in tags or ()]
        payloads += [ParamLogged(p.key, str(p.value)) for p in params or ()]
        self._record(model_stream(model_id), payloads)
        now = int(time.time() * 1000)
        return LoggedModel(
            experiment_id=experiment_id,
            model_id=model_id,
            name=model_name,
            artifact_location=model_artifact_uri(model_id),
            creation_timestamp=now,
            last_updated_timestamp=now,
            model_type=model_type,
            source_run_id=source_run_id,
            status=LoggedModelStatus.PENDING,
            tags={t.key: str(t.value) for t in tags or ()},
            params={p.key: str(p.value) for p in params or ()},
        )

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        """The logged model ``model_id``.

        Raises:
            MlflowException: RESOURCE_DOES_NOT_EXIST (unknown, or deleted unless allowed).
        """
        state = self._model_states().get(model_id)
        if state is None or (state.is_deleted and not allow_deleted):
            raise MlflowException(
                f"Logged model with ID '{model_id}' not found.", RESOURCE_DOES_NOT_EXIST
            )
        return model_entity(state)

    def finalize_logged_model(self, model_id: str, status: Any) -> LoggedModel:
        """Mark the model READY or FAILED.

        Raises:
            MlflowException: RESOURCE_DOES_NOT_EXIST.
        """
        self.get_logged_model(model_id)
        name = status.name if isinstance(status, LoggedModelStatus) else str(status)
        self._record(model_stream(model_id), [LoggedModelFinalized(name)])
        return self.get_logged_model(model_id)

    def search_logged_models(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        datasets: list[dict[str, Any]] | None = None,
        max_results: int | None = None,
        order_by: list[dict[str, Any]] | None = None,
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        """Live logged models of ``experiment_ids`` matching MLflow's logged-model filter (MLflow's
        own filter, sort and paging, as its file store does)."""
        from mlflow.utils.search_utils import SearchLoggedModelsUtils

        wanted = {str(i) for i in experiment_ids}
        models = [
            model_entity(state)
            for state in self._model_states().values()
            if not state.is_deleted
            and state.collection is not None
            and state.collection.value in wanted
        ]
        filtered = SearchLoggedModelsUtils.filter_logged_models(models, filter_string, datasets)
        ordered = SearchLoggedModelsUtils.sort(filtered, order_by)
        page, token = SearchLoggedModelsUtils.paginate(ordered, page_token, max_results or 100)
        return PagedList(page, token)

    def set_logged_model_tags(self, model_id: str, tags: list[Any]) -> None:
        """Set tags of the model.

        Raises:
            MlflowException: RESOURCE_DOES_NOT_EXIST.
        """
        self.get_logged_model(model_id)
        self._record(model_stream(model_id), [TagSet(t.key, str(t.value)) for t in tags])

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        """Not served: the event contract has no tag deletion yet.

        Raises:
            MlflowException: FEATURE_DISABLED, always.
        """
        raise MlflowException(
            "Runstream does not delete tags (the event log has no tag deletion)", FEATURE_DISABLED
        )

    def delete_logged_model(self, model_id: str) -> None:
        """Soft-delete the model.

        Raises:
            MlflowException: RESOURCE_DOES_NOT_EXIST.
        """
        self.get_logged_model(model_id)
        self._record(model_stream(model_id), [RunDeleted()])

    def log_outputs(self, run_id: str, models: list[Any]) -> None:
        """Record the run's output models as run tags ``mlflow.output.<model_id>`` (step)."""
        tags = [RunTag(f"mlflow.output.{m.model_id}", str(m.step)) for m in models]
        if tags:
            self.log_batch(run_id, [], [], tags[:100])

    def record_logged_model(self, run_id: str, mlflow_model: Any) -> None:
        """MLflow 2's model record: the ``mlflow.log-model.history`` tag, as MLflow keeps it."""
        from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_MODELS

        history = self.get_run(run_id).data.tags.get(MLFLOW_LOGGED_MODELS)
        models = (
            [*json.loads(history), mlflow_model.get_tags_dict()]
            if history
            else [mlflow_model.get_tags_dict()]
        )
        self.set_tag(run_id, RunTag(MLFLOW_LOGGED_MODELS, json.dumps(models)))


__all__ = ["RunstreamStore", "derived_experiment_id"]


def _no_tag_deletion() -> MlflowException:
    """The answer to a tag deletion: not served (the event log has no tag deletion)."""
    return MlflowException(
        "Runstream does not delete tags (the event log has no tag deletion); set the tag "
        "to an empty value instead",
        FEATURE_DISABLED,
    )
