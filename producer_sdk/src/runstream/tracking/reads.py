"""The SDK's read half (``load_model``, the seeds' read calls), answered by the query component.

The query component (DuckDB, pyarrow) is not a dependency of the SDK: a training image that
only logs never installs it. It is imported here on first use, and when it is missing the
error names the extra that brings it (``pip install 'runstream-sdk[read]'``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runstream.core.settings import Settings
from runstream.tracking.exceptions import ReadUnavailableError
from runstream.tracking.models import MANIFEST, load_model

if TYPE_CHECKING:
    from runstream.query.engine import QueryEngine

READ_EXTRA = "runstream-sdk[read]"
MAX_RUNS = 100_000
"""The most runs one listing returns (the query layer's limit)."""


def open_engine(settings: Settings) -> QueryEngine:
    """A query engine over the store and event log of ``settings`` (over nothing in no-op
    mode: every read is empty and no folder is created).

    Raises:
        ReadUnavailableError: the query component is not installed.
        ConfigError: the store cannot be opened.
    """
    try:
        from runstream.query.engine import QueryEngine
    except ModuleNotFoundError as error:
        raise ReadUnavailableError(READ_EXTRA, error.name or "runstream.query") from error
    if settings.no_op:  # nothing was written, and reading writes nothing either (no folder)
        import fsspec

        from runstream.query.tail import EmptyEventLog

        return QueryEngine(EmptyEventLog(), fsspec.filesystem("memory"), "/runstream-no-op")
    return QueryEngine.from_settings(settings)


def load_logged_model(settings: Settings, run_id: str, name: str) -> Any:
    """Download the model folder ``name`` of run ``run_id`` (checked against its sha256) to
    a temporary folder, load it, and remove the folder.

    Raises:
        ReadUnavailableError: the query component is not installed.
        RunNotFoundError: no visible run has this id.
        ArtifactNotFoundError: the run has no model ``name`` (no manifest recorded).
        ModelError: the model cannot be loaded.
    """
    folder = Path(tempfile.mkdtemp(prefix="runstream-load-"))
    try:
        with open_engine(settings) as engine:
            paths = {artifact.path for artifact in engine.list_artifacts(run_id, name)}
            if f"{name.rstrip('/')}/{MANIFEST}" not in paths:
                from runstream.query.exceptions import ArtifactNotFoundError

                raise ArtifactNotFoundError(run_id, f"{name}/{MANIFEST}")
            local = engine.download_artifacts(run_id, name, folder)
        return load_model(local)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _system_entries(run: Any) -> Any:
    """``run`` (a query Run) with SAP's system entries: params ``start`` and ``end`` (ISO 8601,
    UTC; ``end`` empty while the run is open) and tag ``runName``; the name defaults to the id."""
    import dataclasses

    name = run.name or run.run_id
    params = {**run.params, "start": _iso(run.start_time_us), "end": _iso(run.end_time_us)}
    return dataclasses.replace(run, name=name, params=params, tags={**run.tags, "runName": name})


def _iso(time_us: int | None) -> str:
    from datetime import UTC, datetime

    if time_us is None:
        return ""
    return datetime.fromtimestamp(time_us / 1e6, UTC).isoformat(timespec="milliseconds")


def find_runs(
    engine: QueryEngine,
    run_ids: Sequence[str] | None = None,
    collection: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> list[Any]:
    """The visible runs with one of ``run_ids`` (all when None), in ``collection`` (any when
    None), carrying every tag of ``tags`` (values compared as strings), oldest first, each
    with SAP's system entries (see :func:`_system_entries`). Unknown ids are left out.

    Raises:
        SourceError, LocalLogError: the log cannot be read.
    """
    from runstream.query.exceptions import RunNotFoundError

    if run_ids is None:
        found = engine.search_runs(None, ["start_time ASC"], MAX_RUNS)
    else:
        found = []
        for run_id in dict.fromkeys(run_ids):
            try:
                found.append(engine.get_run(run_id))
            except RunNotFoundError:
                continue
    wanted = {k: str(v) for k, v in (tags or {}).items()}
    return [
        _system_entries(run)
        for run in found
        if (collection is None or run.collection == collection)
        and all(run.tags.get(k) == v for k, v in wanted.items())
    ]


def metric_histories(
    engine: QueryEngine,
    run_ids: Sequence[str],
    keys: Sequence[str] | None,
    start_step: int | None = None,
    end_step: int | None = None,
) -> list[dict[str, Any]]:
    """Every logged point of each metric of each run, in step order, as
    ``{"run_id", "name", "values": [{"step", "timestamp", "value"}, ...]}`` (one per run and
    metric; ``keys`` None means every metric of the run). Page with ``start_step`` and
    ``end_step`` (inclusive).

    Raises:
        RunNotFoundError: a run is not visible.
        SourceError, LocalLogError: the log cannot be read.
    """
    out = []
    for run_id in run_ids:
        names = sorted(engine.get_run(run_id).metrics) if keys is None else list(keys)
        for key in names:
            table = engine.get_metric_history(run_id, key, start_step=start_step, end_step=end_step)
            out.append({"run_id": run_id, "name": key, "values": table.to_pylist()})
    return out


def grouped_points(engine: QueryEngine, run_id: str, prefix: str) -> list[dict[str, Any]]:
    """The points of ML-Dash's ``metrics(prefix)``: every ``prefix/<field>`` metric of the
    run joined on step, in step (logging) order, as ``{"step", "data": {field: value}}``;
    none when the run is not visible.

    Raises:
        SourceError, LocalLogError: the log cannot be read.
    """
    from runstream.query.exceptions import RunNotFoundError

    head = f"{prefix}/"
    by_step: dict[int, dict[str, Any]] = {}
    try:
        keys = sorted(engine.get_run(run_id).metrics)
    except RunNotFoundError:  # nothing of the run is visible yet (or no-op mode)
        return []
    for key in keys:
        if key.startswith(head):
            for point in engine.get_metric_history(run_id, key).to_pylist():
                by_step.setdefault(point["step"], {})[key[len(head) :]] = point["value"]
    return [{"step": step, "data": by_step[step]} for step in sorted(by_step)]


def log_lines(
    settings: Settings,
    run_id: str,
    levels: Sequence[str] | None = None,
    since_us: int | None = None,
    until_us: int | None = None,
) -> list[dict[str, Any]]:
    """The log lines of run ``run_id`` with a level in ``levels`` (any when None) and an event
    time in ``since_us``..``until_us`` (µs since the epoch, inclusive), each event once, by
    time: ``{"time_us", "level", "message", "metadata"}``. Reads the whole event log (log
    lines are not folded into run state).

    Raises:
        ReadUnavailableError: the query component is not installed.
        SourceError, LocalLogError: the log cannot be read.
    """
    try:
        from runstream.query.tail import event_log
    except ModuleNotFoundError as error:
        raise ReadUnavailableError(READ_EXTRA, error.name or "runstream.query") from error
    from runstream.contract import Codec, LogLine, decode_batch

    codec, seen, lines = Codec(), set(), []
    log = event_log(settings)
    try:
        for record in log.read({}):
            batch = decode_batch(codec, record.value)
            if batch.run_id != run_id:
                continue
            for event in batch.logical_events():
                line = event.payload
                if not isinstance(line, LogLine) or event.id in seen:
                    continue
                seen.add(event.id)
                if (levels is None or line.level in levels) and (
                    (since_us is None or event.time_us >= since_us)
                    and (until_us is None or event.time_us <= until_us)
                ):
                    lines.append(
                        {
                            "time_us": event.time_us,
                            "level": line.level,
                            "message": line.message,
                            "metadata": dict(line.metadata),
                        }
                    )
    finally:
        close = getattr(log, "close", None)
        if close is not None:
            close()
    return sorted(lines, key=lambda line: line["time_us"])
