"""The query engine: DuckDB over the store's Parquet files, the tail of the event log, and the
run states folded from it.

Views (registered on each thread's cursor, fresh at every call):

- ``runs(run_id, name, collection, status, start_time_us, end_time_us)``,
  ``params(run_id, key, value)``, ``tags(...)``, ``labels(...)``,
  ``metrics(run_id, key, value, step, timestamp, min, max)`` (latest point per key): from the
  reducer's states (:mod:`runstream.contract.state`), deleted runs left out.
- ``metric_history(run_id, key, step, timestamp, value, producer_id, sequence, partition,
  offset)``: every live Parquet file plus the tail's uncompacted points, each event identity
  (producer_id, sequence) once.

Run states come from folding the event log with the reducer (not from the compacted runs
topic): the answer then includes the event logged a second ago, needs no stream processor to
be running, and the embedded mode (local log files) uses the same code. An engine from
:meth:`QueryEngine.from_settings` reads the log only from where the compactor committed
(docs/query-tail.md): the states below come from the store's snapshots and rollups. The fold
is incremental: each call reads only the records appended since the previous one.

Parquet is read by pyarrow over the store's fsspec filesystem (s3fs), never by a DuckDB
extension: measured faster than DuckDB reading through s3fs registered as its filesystem
(benchmarks/bench_query.py prints both), and it lets the connection run with external access
disabled, so no statement can read or write a local file or install an extension.

A history query reads one run's live files (each fetched whole in one request, the files in
parallel; only the row groups holding the key and only the columns needed are decoded; decoded
columns of (file, key) are cached: a metric file never changes once written) plus the run's
tail points. Step, timestamp and value are read first: when the steps strictly increase, the
usual case, they are already in order and hold no repeated event (copies of an event share its
step), so nothing is sorted or deduplicated and the identities are never decoded; otherwise
the identities are read too, DuckDB sorts by (step, timestamp, producer, sequence) and adjacent
copies are dropped. Downsampling is one DuckDB aggregation: per bucket of steps, min, max and
the last point; over a wide span it aggregates the files' rollups (per-block summaries in their
footers, see :mod:`runstream.contract.layout`) and the tail's, with buckets aligned to blocks.
A file a merge removed between the listing and the read makes the query list once more.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from fsspec import AbstractFileSystem

from runstream.contract import Codec, liveness
from runstream.contract.identifiers import check_run_id, is_entity_stream
from runstream.contract.parquet import ROLLUP_BLOCK_BITS, ROLLUP_SCHEMA, rollup_table
from runstream.contract.state import RunState
from runstream.core.filesystem import open_store
from runstream.core.settings import DEFAULT_RUN_LEASE, Settings
from runstream.query.artifacts import Artifact, artifacts_of, download, select
from runstream.query.exceptions import QueryError, RunNotFoundError, SqlError
from runstream.query.filters import check_max_results, compile_filter, compile_order
from runstream.query.index import RunIndex, WatchedLog
from runstream.query.runs import Run, run_from_state, state_tables, visible
from runstream.query.store import (
    POINT_COLUMNS,
    POINTS_SCHEMA,
    VALUE_COLUMNS,
    VALUES_SCHEMA,
    MetricFile,
    PointCache,
    all_files,
    as_points,
    run_files,
    run_watermarks,
    store_dataset,
    watermarks,
)
from runstream.query.stored import stored_states
from runstream.query.tail import EventLog, Tail, committed_start, event_log

logger = logging.getLogger(__name__)

_MIN_STEP = -(2**63)
_MAX_STEP = 2**63 - 1
_POINT_COLUMNS = ", ".join(POINT_COLUMNS)
_BLOCK = 1 << ROLLUP_BLOCK_BITS
_ROLLUP_COLUMNS = [
    "block",
    "first_step",
    "min",
    "max",
    "step",
    "timestamp",
    "value",
    "producer_id",
    "sequence",
]
_HISTORY_SCHEMA = pa.schema(
    [("step", pa.int64()), ("timestamp", pa.int64()), ("value", pa.float64())]
)


@dataclass(frozen=True, slots=True)
class MetricStats:
    """Summary of one metric's deduplicated history (NaN ignored by min/max/mean/std)."""

    count: int
    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    first_step: int | None
    last_step: int | None
    last_value: float | None


class QueryEngine:
    """Answers run and metric queries over an event log and a Parquet store.

    Thread-safe: each thread gets its own DuckDB cursor of the engine's own connection.

    Args:
        log: the event log (Kafka events topic, or local log files).
        fs: the store's filesystem (s3fs or local).
        root: the store's root path in ``fs``.
        codec: the message codec (one is built when None).
        cache_bytes: memory kept for decoded metric files (immutable once written).
        tail_limit: uncompacted points held before the tail is checked against the whole
            store (otherwise a run's points are checked when the run is queried).
        run_lease: seconds without an event after which an open run that sends heartbeats
            is shown CRASHED (:mod:`runstream.contract.liveness`).
        tail_start: where the tail starts, per partition (asked at the first refresh; see
            :func:`runstream.query.tail.committed_start`); the states below come from the
            store (:func:`runstream.query.stored.stored_states`). None: the whole log.
    """

    def __init__(
        self,
        log: EventLog,
        fs: AbstractFileSystem,
        root: str,
        *,
        codec: Codec | None = None,
        cache_bytes: int = 1 << 30,
        tail_limit: int = 2_000_000,
        run_lease: float = DEFAULT_RUN_LEASE,
        tail_start: Callable[[], Mapping[int, int]] | None = None,
    ) -> None:
        self._tail_limit = tail_limit
        self._lease_us = liveness.lease_us(run_lease)
        self._fs = fs
        self._root = root.rstrip("/")
        self._cache = PointCache(fs, self._root, cache_bytes)
        codec = codec or Codec()
        self._watched = WatchedLog(log)  # which runs each refresh read: the index's updates
        self._tail = Tail(
            self._watched,
            codec,
            start=tail_start,
            base=None if tail_start is None else lambda: stored_states(fs, self._root, codec),
        )
        self._index = RunIndex(self._lease_us)
        self._db: duckdb.DuckDBPyConnection | None = None  # connected when first needed
        self._db_lock = threading.Lock()
        self._closed = False
        self._local = threading.local()
        self._listing: ThreadPoolExecutor | None = None
        self._lister_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> QueryEngine:
        """The engine of a tracking URI: the events topic for kafka://, the local log folder
        for file://, nothing for noop://; the store of ``settings``.

        Raises:
            ConfigError: the store cannot be opened.
        """
        fs, root = open_store(settings)
        return cls(
            event_log(settings),
            fs,
            root,
            run_lease=settings.run_lease,
            tail_start=lambda: committed_start(settings),
        )

    def __enter__(self) -> QueryEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the DuckDB connection (and with it every thread's cursor) and the log."""
        with self._db_lock:
            self._closed = True
            if self._db is not None:
                self._db.close()
        self._index.close()
        self._tail.close()
        if self._listing is not None:
            self._listing.shutdown(wait=False)

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._connection().cursor()
            self._local.cursor = cursor
        return cursor

    def _connection(self) -> duckdb.DuckDBPyConnection:
        """The engine's DuckDB connection, made at its first use (a history that needs no
        sort or SQL never pays for it).

        Raises:
            duckdb.ConnectionException: the engine is closed.
        """
        with self._db_lock:
            if self._db is None:
                if self._closed:
                    raise duckdb.ConnectionException("the query engine is closed")
                self._db = duckdb.connect(
                    config={"enable_external_access": False, "lock_configuration": True}
                )
            return self._db

    def refresh(self, run_id: str | None = None) -> int:
        """Read what the event log got since the last call (only the partitions that can
        hold the events of ``run_id``, when given and known: its key's partition, those its
        files and the tail saw it in); return how many records.

        Raises:
            SourceError, LocalLogError: the log cannot be read.
        """
        return self._refresh_run(run_id)[0]

    def _refresh_run(self, run_id: str | None) -> tuple[int, list[MetricFile] | None]:
        """:meth:`refresh`, and the run's files when they were listed to choose the
        partitions.

        The tail's start (the compactor's committed positions) is taken first, on a thread
        while the log's partitions are asked for: the listing that follows then sees every
        file below it. The listing (a store request) runs on that thread while the tail
        reads the run's key partition; partitions its files came from and the key does not
        name (a partition count changed since) are read after it. A file listed after part
        of the read is no harm: the tail forgets what the files hold, and the history
        deduplicates on identities.
        """
        if run_id is None:
            return self._refresh(None), None
        if self._tail.begun:  # later calls: nothing to overlap with the partitions' lookup
            partitions = self._tail.partitions_of(run_id)
        else:
            begun = self._lister().submit(self._tail.begin)
            try:
                partitions = self._tail.partitions_of(run_id)
            finally:
                begun.result()
        if partitions is None:
            return self._refresh(None), None
        listing = self._lister().submit(run_files, self._fs, self._root, check_run_id(run_id))
        try:
            count = self._refresh(partitions)
        except BaseException:
            listing.cancel()  # a listing under way ends on its thread, unread
            raise
        files = listing.result()
        others = {file.partition for file in files} - partitions
        if others:
            count += self._refresh(others)
        return count, files

    def _lister(self) -> ThreadPoolExecutor:
        """The thread that lists a run's files while its partition is read."""
        with self._lister_lock:
            if self._listing is None:
                self._listing = ThreadPoolExecutor(1, thread_name_prefix="runstream-listing")
            return self._listing

    def _refresh(self, partitions: set[int] | frozenset[int] | None) -> int:
        count = self._tail.refresh(partitions)
        if count and self._tail.size() > self._tail_limit:  # no new record: no new point
            self._prune_tail()
        return count

    def _prune_tail(self) -> None:
        """Forget the tail points every run's files already hold (one store listing)."""
        marks = watermarks(all_files(self._fs, self._root))
        for run_id in self._tail.run_ids():
            self._tail.points(run_id, marks.get(run_id, {}))
        logger.debug("tail pruned to %d points", self._tail.size())

    # -- runs ------------------------------------------------------------------------------

    def get_run(self, run_id: str, *, include_deleted: bool = False) -> Run:
        """The run ``run_id`` as of now (a deleted one too with ``include_deleted``; then
        :meth:`is_deleted` tells).

        Raises:
            RunNotFoundError: no visible run has this id.
            SourceError, LocalLogError: the log cannot be read.
        """
        self.refresh()
        state = self._tail.states().get(run_id)
        if state is None or is_entity_stream(run_id) or (state.is_deleted and not include_deleted):
            raise RunNotFoundError(run_id)
        return run_from_state(self._shown(state))

    def is_deleted(self, run_id: str) -> bool:
        """True when run ``run_id`` exists and is deleted (as of the last refresh)."""
        state = self._tail.states().get(run_id)
        return state is not None and state.is_deleted

    def entity_states(self, prefix: str) -> list[RunState]:
        """A copy of the state of every stream whose id starts with ``prefix`` (deleted ones
        too), as of now: experiments (``EXPERIMENT_STREAM_PREFIX``) and logged models
        (``MODEL_STREAM_PREFIX``) of :mod:`runstream.contract.identifiers`.

        Raises:
            SourceError, LocalLogError: the log cannot be read.
        """
        self.refresh()
        states = self._tail.states()
        return [states[key].copy() for key in sorted(states) if key.startswith(prefix)]

    def _state(self, run_id: str) -> RunState:
        self.refresh()
        state = self._tail.states().get(run_id)
        if state is None or state.is_deleted:
            raise RunNotFoundError(run_id)
        return state

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[Artifact]:
        """The artifacts of run ``run_id`` at ``path`` or under it (all when None), by path.

        Raises:
            RunNotFoundError: no visible run has this id.
            ArtifactNotFoundError: ``path`` names no artifact nor folder of artifacts.
            UnsafeArtifactPathError: ``path`` is not a safe artifact path.
            SourceError, LocalLogError: the log cannot be read.
        """
        return select(run_id, artifacts_of(self._state(run_id)).values(), path)

    def download_artifacts(self, run_id: str, path: str | None, dst: str | Path) -> Path:
        """Copy the artifacts at ``path`` or under it (all when None) into folder ``dst``,
        each at ``dst/<artifact path>``, every file checked against its sha256; return
        ``dst/path`` (``dst`` when None).

        Raises:
            RunNotFoundError: no visible run has this id.
            ArtifactNotFoundError: ``path`` names no artifact nor folder of artifacts.
            ArtifactReadError: a stored object is missing, unreadable or not its sha256.
            UnsafeArtifactPathError: ``path`` is not a safe artifact path.
        """
        chosen = self.list_artifacts(run_id, path)
        destination = Path(dst)
        download(self._fs, self._root, run_id, chosen, destination)
        return destination if path is None else destination / path.rstrip("/")

    def search_runs(
        self,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        *,
        deleted: bool | None = False,
    ) -> list[Run]:
        """The runs matching ``filter`` (see :mod:`runstream.query.filters`), sorted by ``order_by``
        (default: newest first), at most ``max_results``; live runs, or with ``deleted`` True
        the deleted ones, None both.

        Raises:
            FilterError: the filter, an order-by clause or max_results is malformed.
            SourceError, LocalLogError: the log cannot be read.
        """
        where = compile_filter(filter)
        order = compile_order(tuple(order_by or ()))
        limit = check_max_results(max_results)
        self.refresh()
        changed, unknown = self._watched.take()  # taken before the states are read
        states = self._tail.states()
        now_us = time.time_ns() // 1000
        found = self._index.search(
            states, states.keys() if unknown else changed, where, order, limit, deleted, now_us
        )
        return [
            run_from_state(liveness.shown(states[run_id], now_us, self._lease_us))
            for run_id in found
        ]

    def _shown(self, state: RunState) -> RunState:
        """``state`` with the status readers see now (CRASHED past the lease)."""
        return liveness.shown(state, time.time_ns() // 1000, self._lease_us)

    def _shown_states(self, deleted: bool | None = False) -> dict[str, RunState]:
        states = visible(self._tail.states(), deleted)
        return {state.run_id: self._shown(state) for state in states}

    def _register_states(
        self, cursor: duckdb.DuckDBPyConnection, states: Mapping[str, RunState]
    ) -> None:
        for name, table in state_tables(states.values()).items():
            cursor.register(name, table)

    # -- metric history --------------------------------------------------------------------

    def _run_points(
        self,
        run_id: str,
        key: str,
        start_step: int | None,
        end_step: int | None,
        files: Sequence[MetricFile] | None = None,
    ) -> tuple[pa.Table, bool]:
        """The points of (run, key) in the step range from the files and the tail, and
        whether their steps strictly increase (then they are sorted and have no repeats, and
        only :data:`VALUE_COLUMNS` are read; otherwise the identities come too)."""
        if files is None:
            files = run_files(self._fs, self._root, check_run_id(run_id))
        tail = self._tail.points(run_id, run_watermarks(files), key)
        parts = self._cache.points(files, key, identities=False)
        if tail.num_rows:
            parts.append(tail.select(list(VALUE_COLUMNS)).cast(VALUES_SCHEMA))
        table = _in_range(_concat(parts, VALUES_SCHEMA), start_step, end_step)
        if _strictly_increasing(table["step"]):
            return table, True
        parts = self._cache.points(files, key)
        if tail.num_rows:
            parts.append(as_points(tail))
        return _in_range(_concat(parts, POINTS_SCHEMA), start_step, end_step), False

    def get_metric_history(
        self,
        run_id: str,
        key: str,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        max_points: int | None = None,
    ) -> pa.Table:
        """Every point of metric ``key`` of run ``run_id`` with start_step <= step <= end_step,
        each event once, sorted by (step, timestamp, producer, sequence): columns step,
        timestamp (ms), value.

        With ``max_points``, the step range is cut into at most that many equal buckets and
        each non-empty bucket gives one row: ``step``/``timestamp``/``value`` of its last
        point, its ``min`` and ``max`` value and ``first_step`` (a spike stays visible).
        When a bucket would span at least one rollup block (``2**ROLLUP_BLOCK_BITS`` steps,
        see :mod:`runstream.contract.layout`) and the step range is whole blocks (or unbounded), the
        buckets are aligned to blocks (width a multiple of the block, the first starting at
        the first point's block; still at most ``max_points``) and come from the files'
        rollups: a few thousand rows read instead of millions. Every figure stays exact:
        min, max, first step and last point of a bucket are those of its points.

        Raises:
            UnsafeRunIdError: ``run_id`` is not a safe path segment.
            QueryError: ``max_points`` is not a positive int.
            SourceError, LocalLogError: the log cannot be read.
        """
        if max_points is not None and (
            isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1
        ):
            raise QueryError(f"max_points must be a positive int, not {max_points!r}")
        files = self._refresh_run(run_id)[1]
        try:
            return self._history(run_id, key, start_step, end_step, max_points, files)
        except FileNotFoundError as error:  # a merge replaced a listed file: list again
            logger.debug("re-listing run %s after %r", run_id, error)
            return self._history(run_id, key, start_step, end_step, max_points)

    def _history(
        self,
        run_id: str,
        key: str,
        start_step: int | None,
        end_step: int | None,
        max_points: int | None,
        files: Sequence[MetricFile] | None = None,
    ) -> pa.Table:
        if max_points is not None:
            return self._downsample(run_id, key, start_step, end_step, max_points, files)
        table, increasing = self._run_points(run_id, key, start_step, end_step, files)
        if increasing:  # the usual case: one writer, growing steps; nothing to sort or drop
            return table.select(["step", "timestamp", "value"]).cast(_HISTORY_SCHEMA)
        cursor = self._cursor()
        cursor.register("_points", table)
        ordered = cursor.sql(
            f"SELECT {_POINT_COLUMNS} FROM _points ORDER BY step, timestamp, producer_id, sequence"
        ).to_arrow_table()
        return _distinct_sorted(ordered).cast(_HISTORY_SCHEMA)

    def _downsample(
        self,
        run_id: str,
        key: str,
        start_step: int | None,
        end_step: int | None,
        max_points: int,
        files: Sequence[MetricFile] | None = None,
    ) -> pa.Table:
        if files is None:
            files = run_files(self._fs, self._root, check_run_id(run_id))
        if _whole_blocks(start_step, end_step):
            rollups = self._rollups(run_id, key, files, start_step, end_step)
            lo, hi = _step_span(rollups)
            if lo is not None and hi is not None and (hi - lo + max_points) // max_points >= _BLOCK:
                return self._downsample_rollups(rollups, lo, hi, max_points)
        table, increasing = self._run_points(run_id, key, start_step, end_step, files)
        return self._downsample_points(table, increasing, max_points)

    def _rollups(
        self,
        run_id: str,
        key: str,
        files: Sequence[MetricFile],
        start_step: int | None,
        end_step: int | None,
    ) -> pa.Table:
        """The rollup rows of (run, key): the files' and the tail's, blocks in the range."""
        parts = self._cache.rollups(files, key)
        tail = self._tail.points(run_id, run_watermarks(files), key)
        if tail.num_rows:
            parts.append(rollup_table(tail))
        table = pa.concat_tables(parts) if parts else ROLLUP_SCHEMA.empty_table()
        if start_step is not None or end_step is not None:
            blocks = table["block"]
            lo = _MIN_STEP if start_step is None else start_step >> ROLLUP_BLOCK_BITS
            hi = _MAX_STEP if end_step is None else end_step >> ROLLUP_BLOCK_BITS
            table = table.filter(pc.and_(pc.greater_equal(blocks, lo), pc.less_equal(blocks, hi)))
        return table

    def _downsample_rollups(self, rollups: pa.Table, lo: int, hi: int, max_points: int) -> pa.Table:
        # Buckets of whole blocks: origin at lo's block, width the least multiple of the
        # block giving at most max_points buckets. Min, max and last are idempotent, so
        # rows of one block from several files (or repeated events) merge exactly.
        origin = (lo >> ROLLUP_BLOCK_BITS) << ROLLUP_BLOCK_BITS
        span = hi - origin + 1
        width = _ceil_div(_ceil_div(span, max_points), _BLOCK) * _BLOCK
        cursor = self._cursor()
        cursor.register("_rollups", rollups.select(_ROLLUP_COLUMNS))
        order = "(step, timestamp, producer_id, sequence)"
        sql = f"""
            SELECT min(first_step) AS first_step,
                   max(step) AS step,
                   arg_max(timestamp, {order}) AS timestamp,
                   arg_max(value, {order}) AS value,
                   min(min) AS min,
                   max(max) AS max
            FROM _rollups
            GROUP BY (CAST(block AS HUGEINT) * {_BLOCK} - CAST($origin AS HUGEINT))
                     // CAST($width AS HUGEINT)
            ORDER BY step"""
        # Steps span ±2**63: bucket arithmetic in 128 bits (a negative block cannot be
        # left-shifted, a span can pass 2**63), the bounds passed as text.
        params = {"origin": str(origin), "width": str(width)}
        return cursor.sql(sql, params=params).to_arrow_table()

    def _downsample_points(self, table: pa.Table, increasing: bool, max_points: int) -> pa.Table:
        # Copies of an event are the same point: min, max and last need no dedupe. With
        # strictly increasing steps the last point of a bucket is the one of its max step.
        order = "step" if increasing else "(step, timestamp, producer_id, sequence)"
        cursor = self._cursor()
        cursor.register("_points", table)
        sql = f"""
            WITH span AS (SELECT CAST(min(step) AS HUGEINT) AS first,
                                 (CAST(max(step) AS HUGEINT) - min(step) + $n) // $n AS width
                          FROM _points)
            SELECT min(step) AS first_step,
                   max(step) AS step,
                   arg_max(timestamp, {order}) AS timestamp,
                   arg_max(value, {order}) AS value,
                   min(value) AS min,
                   max(value) AS max
            FROM _points, span
            GROUP BY (CAST(step AS HUGEINT) - span.first) // span.width
            ORDER BY step"""
        return cursor.sql(sql, params={"n": max_points}).to_arrow_table()

    def get_metrics_history(
        self,
        run_ids: Sequence[str],
        keys: Sequence[str],
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        max_points: int | None = None,
    ) -> pa.Table:
        """:meth:`get_metric_history` of every (run, key) pair, as one table with ``run_id``
        and ``key`` columns first.

        Raises:
            UnsafeRunIdError: a run id is not a safe path segment.
            SourceError, LocalLogError: the log cannot be read.
        """
        tables = []
        for run_id in run_ids:
            for key in keys:
                table = self.get_metric_history(
                    run_id, key, start_step=start_step, end_step=end_step, max_points=max_points
                )
                table = table.add_column(0, "key", pa.array([key] * table.num_rows, pa.string()))
                tables.append(
                    table.add_column(0, "run_id", pa.array([run_id] * table.num_rows, pa.string()))
                )
        if not tables:
            return pa.schema(
                [("run_id", pa.string()), ("key", pa.string()), *_HISTORY_SCHEMA]
            ).empty_table()
        return pa.concat_tables(tables)

    def stats(self, run_id: str, key: str) -> MetricStats:
        """Count, min, max, mean, std, first/last step and last value of a metric's history.

        Raises:
            UnsafeRunIdError: ``run_id`` is not a safe path segment.
            SourceError, LocalLogError: the log cannot be read.
        """
        history = self.get_metric_history(run_id, key)
        if history.num_rows == 0:
            return MetricStats(0, None, None, None, None, None, None, None)
        values = history["value"].to_numpy()
        steps = history["step"].to_numpy()
        finite = values[~np.isnan(values)]
        has = finite.size > 0
        return MetricStats(
            count=history.num_rows,
            min=float(finite.min()) if has else None,
            max=float(finite.max()) if has else None,
            mean=float(finite.mean()) if has else None,
            std=float(finite.std(ddof=1)) if finite.size > 1 else None,
            first_step=int(steps[0]),
            last_step=int(steps[-1]),
            last_value=float(values[-1]),
        )

    # -- SQL -------------------------------------------------------------------------------

    def sql(self, text: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> pa.Table:
        """Run one SQL statement over the views and return its rows.

        Values go in ``params`` (``?`` or ``$name`` placeholders), never into ``text``. The
        connection has no access to local files or extensions.

        Raises:
            SqlError: DuckDB rejected the statement.
            SourceError, LocalLogError: the log cannot be read.
        """
        cursor = self.views()
        try:
            relation = cursor.sql(text, params=params)
            return pa.table({}) if relation is None else relation.to_arrow_table()
        except duckdb.Error as error:
            raise SqlError(f"{error} (in {text[:200]!r})") from error

    def views(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor with every view registered as of now (for callers that want
        DuckDB's own API: relations, pandas, ...).

        Raises:
            SourceError, LocalLogError: the log cannot be read.
        """
        self.refresh()
        cursor = self._cursor()
        states = self._shown_states()
        self._register_states(cursor, states)
        files = all_files(self._fs, self._root)
        marks = watermarks(files)
        tails = []
        for run_id in self._tail.run_ids():
            points = self._tail.points(run_id, marks.get(run_id, {}))
            if points.num_rows:
                tails.append(
                    points.append_column(
                        "run_id", pa.array([run_id] * points.num_rows, pa.string())
                    )
                )
        cursor.register("_store_files", store_dataset(self._fs, self._root, files))
        if tails:
            cursor.register("_store_tail", pa.concat_tables(tails))
        else:
            cursor.register(
                "_store_tail",
                self._tail.points("", {}).append_column("run_id", pa.array([], pa.string())),
            )
        columns = (
            'run_id, key, step, timestamp, value, producer_id, sequence, "partition", "offset"'
        )
        cursor.execute(
            f"""CREATE OR REPLACE TEMP VIEW metric_history AS
            SELECT {columns} FROM (
                SELECT {columns} FROM _store_files
                UNION ALL SELECT {columns} FROM _store_tail)
            QUALIFY row_number() OVER (PARTITION BY producer_id, sequence
                                       ORDER BY "partition", "offset") = 1"""
        )
        return cursor


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _whole_blocks(start_step: int | None, end_step: int | None) -> bool:
    """Whether the step range is a union of whole rollup blocks (unbounded ends are)."""
    return (start_step is None or start_step % _BLOCK == 0) and (
        end_step is None or (end_step + 1) % _BLOCK == 0
    )


def _step_span(rollups: pa.Table) -> tuple[int | None, int | None]:
    """The first and last step of the points a rollup table covers (None when empty)."""
    if rollups.num_rows == 0:
        return None, None
    return pc.min(rollups["first_step"]).as_py(), pc.max(rollups["step"]).as_py()


def _concat(parts: Sequence[pa.Table], schema: pa.Schema) -> pa.Table:
    if not parts:
        return schema.empty_table()
    return pa.concat_tables(parts) if len(parts) > 1 else parts[0]


def _in_range(table: pa.Table, start_step: int | None, end_step: int | None) -> pa.Table:
    """The rows of ``table`` with start_step <= step <= end_step (None: unbounded)."""
    if start_step is None and end_step is None:
        return table
    steps = table["step"]
    lo = _MIN_STEP if start_step is None else start_step
    hi = _MAX_STEP if end_step is None else end_step
    return table.filter(pc.and_(pc.greater_equal(steps, lo), pc.less_equal(steps, hi)))


def _strictly_increasing(steps: pa.ChunkedArray) -> bool:
    """Whether the steps strictly increase, chunk by chunk and across chunk boundaries."""
    previous: int | None = None
    for chunk in steps.chunks:
        if len(chunk) == 0:
            continue
        values = chunk.to_numpy()
        if previous is not None and values[0] <= previous:
            return False
        if not np.all(values[1:] > values[:-1]):
            return False
        previous = int(values[-1])
    return True


def _distinct_sorted(table: pa.Table) -> pa.Table:
    """Drop repeated events from rows sorted by (step, timestamp, producer_id, sequence):
    copies of one event are adjacent there."""
    if table.num_rows > 1:
        sequence = table["sequence"].to_numpy()
        step = table["step"].to_numpy()
        repeat = np.zeros(table.num_rows, dtype=bool)
        repeat[1:] = (sequence[1:] == sequence[:-1]) & (step[1:] == step[:-1])
        candidates = np.flatnonzero(repeat)
        if candidates.size:
            producers = table["producer_id"]
            same = np.array(
                [producers[int(i)] == producers[int(i) - 1] for i in candidates], dtype=bool
            )
            repeat[candidates] = same
            table = table.filter(pa.array(~repeat))
    return table.select(["step", "timestamp", "value"])
