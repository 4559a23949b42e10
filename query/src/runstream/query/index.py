"""The run index of :meth:`runstream.query.engine.QueryEngine.search_runs`: DuckDB tables of
every run's attributes, params, tags, labels and latest metrics, kept up to date by rebuilding
only the rows of the runs whose state changed since the last search.

Which runs changed comes from two sources, either one enough to mark a run:

- :class:`WatchedLog` wraps the engine's event log and notes the message key (the run id,
  checked by the contract's validation) of every record the tail reads, once the tail has
  folded it (a record without a key marks every run);
- the index keeps the state object it indexed per run: a run whose state is another object
  now (the tail replaced it, say from a store snapshot), a new run, or a run gone, is rebuilt.

The index lives in a DuckDB connection of its own (no statement of ``QueryEngine.sql`` can
reach or change it). Every filter and ordering is still the bound SQL of
:mod:`runstream.query.filters`, run over the views ``runs``, ``params``, ``tags``, ``labels``
and ``metrics`` of this connection. ``runs.status`` is computed in the statement from the time
bound to it: a run RUNNING with heartbeats is CRASHED once its lease ran out
(:mod:`runstream.contract.liveness`), with no rebuild.

A run with more than :data:`WIDE_KEYS` keys in a table (a million metric keys) keeps none of
them in that table: at each search, the rows of the keys the statement reads are built from
its state and registered beside the table, as before the index (issue 17).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import duckdb
import pyarrow as pa

from runstream.contract import liveness
from runstream.contract.identifiers import is_entity_stream
from runstream.contract.state import RunState
from runstream.core.source import Record
from runstream.query.filters import Compiled
from runstream.query.runs import METRICS_SCHEMA, PAIRS_SCHEMA, state_tables
from runstream.query.tail import EventLog

logger = logging.getLogger(__name__)

WIDE_KEYS = 1000
"""Keys of one run in one table above which that run's rows of that table stay out of the
index and are built per search, only for the keys the search reads."""

_PAIRS = ("params", "tags", "labels")
_TABLES = (*_PAIRS, "metrics")
_ROW_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("name", pa.string()),
        ("collection", pa.string()),
        ("status", pa.string()),
        ("start_time_us", pa.int64()),
        ("end_time_us", pa.int64()),
        ("crashed_at_us", pa.int64()),
        ("deleted", pa.bool_()),
    ]
)
_SCHEMAS = {name: PAIRS_SCHEMA for name in _PAIRS} | {"metrics": METRICS_SCHEMA}
_DELETED = {False: "NOT deleted", True: "deleted", None: "TRUE"}


class WatchedLog:
    """An event log that notes the run id of every record read from it, after the reader
    is done with the record (see :meth:`take`). Everything else goes to the log it wraps."""

    def __init__(self, log: EventLog) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._touched: set[str] = set()
        self._unknown = False

    def read(
        self, start: Mapping[int, int], partitions: Collection[int] | None = None
    ) -> Iterator[Record]:
        """The wrapped log's records from ``start`` (of ``partitions`` only, when given).

        Raises:
            whatever the wrapped log's ``read`` raises.
        """
        return self._watch(self._log.read(start, partitions))

    def _watch(self, records: Iterator[Record]) -> Iterator[Record]:
        for record in records:
            try:
                yield record
            finally:  # the reader folded the record (or gave up on it): note it now
                self._note(record.key)

    def _note(self, key: bytes | None) -> None:
        with self._lock:
            if key is None:
                self._unknown = True
            else:
                self._touched.add(key.decode("utf-8", "replace"))

    def take(self) -> tuple[set[str], bool]:
        """The run ids noted since the last call, and whether a record had no key (then any
        run may have changed); both are reset."""
        with self._lock:
            touched, unknown = self._touched, self._unknown
            self._touched, self._unknown = set(), False
            return touched, unknown

    def close(self) -> None:
        """Close the wrapped log, if it has anything to close."""
        close = getattr(self._log, "close", None)
        if close is not None:
            close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)

    def __repr__(self) -> str:
        return repr(self._log)


class RunIndex:
    """The searchable tables of every run (deleted ones too), updated run by run.

    Thread-safe: :meth:`search` holds one lock while it updates and reads.

    Args:
        lease_us: the run lease (microseconds) after which a silent run shows CRASHED.
    """

    def __init__(self, lease_us: int) -> None:
        self._lease_us = lease_us
        self._lock = threading.Lock()
        self._indexed: dict[str, RunState] = {}
        self._wide: dict[str, dict[str, RunState]] = {name: {} for name in _TABLES}
        self._had_wide = {name: False for name in _TABLES}
        self._fingerprint: tuple[int, int] = (0, 0)
        self._connection: duckdb.DuckDBPyConnection | None = None  # made at the first search
        self._closed = False

    @property
    def _db(self) -> duckdb.DuckDBPyConnection:
        """The index's DuckDB connection with its tables, made when first needed (an engine
        that only reads histories never pays for it). Call with the lock held."""
        if self._connection is None:
            if self._closed:
                raise duckdb.ConnectionException("the run index is closed")
            self._connection = self._connect()
        return self._connection

    @staticmethod
    def _connect() -> duckdb.DuckDBPyConnection:
        # one thread: a search is a few milliseconds, less than handing work to a second one
        db = duckdb.connect(
            config={"enable_external_access": False, "threads": 1, "lock_configuration": True}
        )
        db.execute(
            "CREATE TABLE run_rows (run_id VARCHAR, name VARCHAR, collection VARCHAR, "
            "status VARCHAR, start_time_us BIGINT, end_time_us BIGINT, crashed_at_us BIGINT, "
            "deleted BOOLEAN)"
        )
        for name in _PAIRS:
            db.execute(f"CREATE TABLE {name}_rows (run_id VARCHAR, key VARCHAR, value VARCHAR)")
        db.execute(
            "CREATE TABLE metrics_rows (run_id VARCHAR, key VARCHAR, value DOUBLE, step BIGINT, "
            'timestamp BIGINT, "min" DOUBLE, "max" DOUBLE)'
        )
        for name in _TABLES:
            db.execute(f"CREATE VIEW {name} AS SELECT * FROM {name}_rows")
        return db

    def close(self) -> None:
        """Close the index's connection."""
        with self._lock:
            self._closed = True
            if self._connection is not None:
                self._connection.close()

    def search(
        self,
        states: Mapping[str, RunState],
        changed: Collection[str],
        where: Compiled,
        order: Compiled,
        limit: int,
        deleted: bool | None,
        now_us: int,
    ) -> list[str]:
        """The ids of the runs of ``states`` matching ``where`` in ``order``, at most
        ``limit``: live runs, deleted ones (``deleted`` True) or both (None), with the
        status shown at ``now_us``. The index is first brought up to ``states``: the runs of
        ``changed``, new runs, runs gone and runs whose state is another object are rebuilt.

        Raises:
            duckdb.Error: DuckDB rejected the statement (a bug of the filter compiler).
        """
        with self._lock:
            self._update(states, changed)
            self._register_wide(where.keys | order.keys)
            sql = (
                "WITH runs AS (SELECT run_id, name, collection, CASE WHEN crashed_at_us < ? "
                "THEN 'CRASHED' ELSE status END AS status, start_time_us, end_time_us "
                f"FROM run_rows WHERE {_DELETED[deleted]}) "
                f"SELECT r.run_id FROM runs r WHERE {where.sql} ORDER BY {order.sql} LIMIT ?"
            )
            rows = self._db.execute(sql, [now_us, *where.params, *order.params, limit]).fetchall()
            return [run_id for (run_id,) in rows]

    def _update(self, states: Mapping[str, RunState], changed: Collection[str]) -> None:
        indexed = self._indexed
        stale = {run_id for run_id in changed if run_id in states or run_id in indexed}
        # Another object, a new run or one gone changes the sum of the states' addresses (the
        # index holds every state it indexed: no address is reused while it does), or their
        # count: only then is each run's state compared.
        fingerprint = (len(states), sum(map(id, states.values())))
        if fingerprint != self._fingerprint:
            known = indexed.get
            stale.update([run_id for run_id, state in states.items() if known(run_id) is not state])
            stale.update(run_id for run_id in indexed if run_id not in states)
        stale = {run_id for run_id in stale if not is_entity_stream(run_id)}
        if not stale:
            self._fingerprint = fingerprint
            return
        rebuild = len(stale) * 2 > len(indexed)
        if rebuild:  # most runs: build everything anew
            for table in ("run", *_TABLES):
                self._db.execute(f"DELETE FROM {table}_rows")
            indexed.clear()
            for wide in self._wide.values():
                wide.clear()
            stale = {run_id for run_id in states if not is_entity_stream(run_id)}
        else:
            ids = pa.table({"run_id": pa.array(sorted(stale), pa.string())})
            self._db.register("_stale", ids)
            for table in ("run", *_TABLES):
                self._db.execute(
                    f"DELETE FROM {table}_rows WHERE run_id IN (SELECT run_id FROM _stale)"
                )
            self._db.unregister("_stale")
            for run_id in stale:
                indexed.pop(run_id, None)
                for wide in self._wide.values():
                    wide.pop(run_id, None)
        fresh = [states[run_id] for run_id in sorted(stale) if run_id in states]
        for name, table in self._rows(fresh).items():
            if table.num_rows:
                self._db.register("_fresh", table)
                # a whole build sorted by key: a filter on one key skips most row groups
                by_key = " ORDER BY key" if rebuild and name != "run" else ""
                self._db.execute(f"INSERT INTO {name}_rows SELECT * FROM _fresh{by_key}")
                self._db.unregister("_fresh")
        for state in fresh:
            indexed[state.run_id] = state
        self._fingerprint = fingerprint
        logger.debug("run index: %d runs rebuilt, %d indexed", len(fresh), len(indexed))

    def _rows(self, states: list[RunState]) -> dict[str, pa.Table]:
        """The rows of ``states``: one per run, and one per key of each narrow table."""
        runs: list[list[Any]] = [[] for _ in _ROW_SCHEMA]
        pairs: dict[str, list[list[Any]]] = {name: [[], [], []] for name in _PAIRS}
        metrics: list[list[Any]] = [[] for _ in METRICS_SCHEMA]
        lease_us = self._lease_us
        for state in states:
            run_id = state.run_id
            for column, value in zip(
                runs,
                (
                    run_id,
                    None if state.name is None else state.name.value,
                    None if state.collection is None else state.collection.value,
                    state.status_value,
                    state.start_time_us,
                    state.end_time_us,
                    liveness.crashed_at_us(state, lease_us),
                    state.is_deleted,
                ),
                strict=True,
            ):
                column.append(value)
            for name, registers in (
                ("params", state.params),
                ("tags", state.tags),
                ("labels", state.labels),
            ):
                if len(registers) > WIDE_KEYS:
                    self._wide[name][run_id] = state
                    continue
                run_ids, keys, values = pairs[name]
                run_ids.extend([run_id] * len(registers))
                keys.extend(registers)
                values.extend([register.value for register in registers.values()])
            summaries = state.metrics
            if len(summaries) > WIDE_KEYS:
                self._wide["metrics"][run_id] = state
                continue
            metrics[0].extend([run_id] * len(summaries))
            metrics[1].extend(summaries)
            for m in summaries.values():
                metrics[2].append(m.value)
                metrics[3].append(m.step)
                metrics[4].append(m.timestamp)
                metrics[5].append(m.min)
                metrics[6].append(m.max)
        tables = {"run": _table(runs, _ROW_SCHEMA)}
        for name in _PAIRS:
            tables[name] = _table(pairs[name], PAIRS_SCHEMA)
        tables["metrics"] = _table(metrics, METRICS_SCHEMA)
        return tables

    def _register_wide(self, keys: frozenset[tuple[str, str]]) -> None:
        """Register beside each table the rows of ``keys`` of its wide runs (read from their
        states now: never stale); a table without wide runs is its view alone."""
        for name in _TABLES:
            wide = self._wide[name]
            if wide:
                wanted = {(table, key) for table, key in keys if table == name}
                self._db.register(f"wide_{name}", state_tables(wide.values(), wanted)[name])
            if bool(wide) != self._had_wide[name]:
                union = f" UNION ALL SELECT * FROM wide_{name}" if wide else ""
                self._db.execute(
                    f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {name}_rows{union}"
                )
                if not wide:
                    self._db.unregister(f"wide_{name}")
                self._had_wide[name] = bool(wide)


def _table(columns: list[list[Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_arrays(
        [pa.array(column, field.type) for column, field in zip(columns, schema, strict=True)],
        schema=schema,
    )
