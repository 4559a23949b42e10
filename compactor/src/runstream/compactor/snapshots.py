"""Run state snapshots as Parquet under ``{store}/runs/`` (latest wins), for SQL users.

Per run, three files (paths from :mod:`runstream.contract.layout`), each overwritten whole when its
content changes (``run.parquet`` on every write):

- ``run.parquet``: one row: name, collection, status, start_time_us, end_time_us,
  deleted, and ``state`` (the reducer's RunState in Avro, read back when a worker restarts);
- ``params.parquet``: key, value;
- ``tags.parquet``: namespace (``tags`` or ``labels``), key, value.

The run id is the Hive partition (``run_id=...``) of the folder. The state is computed by
the one reducer, :mod:`runstream.contract.state`, from every event but the metric points
(their history is in the metric files; latest values are a query over it) and the
batches of heartbeats alone (they only say the run is alive, and would rewrite every open
run's snapshot at every rotation; liveness is shown by the processor and the query layer).
A heartbeat in a batch that changes the state anyway is folded: the run's first comes with
its RunStarted, so the snapshot tells that the run sends heartbeats.

The snapshot of a deleted run also removes the run's artifact objects
(:func:`runstream.compactor.artifacts.delete_run_artifacts`).
"""

from __future__ import annotations

import threading
import zlib

import pyarrow as pa

from runstream.compactor.artifacts import delete_run_artifacts
from runstream.compactor.store import Store
from runstream.contract.codec import Codec
from runstream.contract.events import EventBatch, EventId, Heartbeat, LogicalEvent, MetricLogged
from runstream.contract.layout import run_table_path
from runstream.contract.parquet import decode_table, encode_table
from runstream.contract.state import RunState, apply, decode_state, encode_state, merge

_UNFOLDED = (MetricLogged, Heartbeat)
_LOCKS = 64
"""Locks that serialize the snapshot writes of a run (a run's lock: CRC-32 of its id)."""

RUN_SCHEMA = pa.schema(
    [
        pa.field("name", pa.string()),
        pa.field("collection", pa.string()),
        pa.field("status", pa.string()),
        pa.field("start_time_us", pa.int64()),
        pa.field("end_time_us", pa.int64()),
        pa.field("deleted", pa.bool_(), nullable=False),
        pa.field("state", pa.binary(), nullable=False),
    ]
)
PARAMS_SCHEMA = pa.schema(
    [pa.field("key", pa.string(), nullable=False), pa.field("value", pa.string(), nullable=False)]
)
TAGS_SCHEMA = pa.schema(
    [
        pa.field("namespace", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("value", pa.string(), nullable=False),
    ]
)


class Snapshots:
    """Reads, updates and writes the run state snapshots of one store.

    Args:
        store: the destination.
        codec: the codec of the ``state`` column.
    """

    def __init__(self, store: Store, codec: Codec) -> None:
        self.store = store
        self.codec = codec
        self._locks = [threading.Lock() for _ in range(_LOCKS)]

    def write_merged(self, run_id: str, state: RunState) -> RunState:
        """Merge ``state`` into the snapshot the store holds for ``run_id`` and write the
        result; return it. A run spans several partitions when several local log files
        (the embedded mode's partitions; in Kafka, a partition count that changed) hold
        its events, and each partition's buffer folds only its own: written as it was, the
        snapshot of one buffer overwrote the other's, and a run lost the params its rank 0
        logged while the positions of that file were committed past them. The writes of a
        run are serialized (one lock per run, striped), and the reducer's merge is
        idempotent.

        Raises:
            StoreWriteError: the store kept failing and the worker is stopping.
            CorruptPartError: the stored snapshot is not a readable run table.
            DecodeError: its state column is not a RunState.
        """
        with self._locks[zlib.crc32(run_id.encode("utf-8")) % _LOCKS]:
            stored = self.load(run_id)
            if stored is None:
                self.write(run_id, state)
                return state
            previous = stored.copy()
            merged = merge(stored, state)
            self.write(run_id, merged, previous)
            return merged

    def load(self, run_id: str) -> RunState | None:
        """The state last written for ``run_id``, or None if there is none.

        Raises:
            StoreWriteError: the store kept failing and the worker is stopping.
            CorruptPartError: the snapshot is not a readable run table.
            DecodeError: its state column is not a RunState.
        """
        path = run_table_path(self.store.root, run_id, "run")
        data = self.store.read_if_exists(path)
        if data is None:
            return None
        table = decode_table(data, path, ["state"])
        return decode_state(self.codec, table["state"][0].as_py())

    @staticmethod
    def changes(batch: EventBatch) -> bool:
        """Whether ``batch`` has an event the snapshots fold (not a point nor a heartbeat)."""
        return any(not isinstance(event.payload, _UNFOLDED) for event in batch.events)

    @staticmethod
    def apply(state: RunState | None, batch: EventBatch) -> RunState:
        """``state`` with every event of ``batch`` but metric points folded in (the
        heartbeats of a batch that :meth:`changes` the state too: the run's first one comes
        with its RunStarted, so the snapshot says the run sends heartbeats, which the
        query's liveness needs once its tail starts past that batch).

        Raises:
            StateError: ``state`` is another run's.
        """
        producer = batch.producer.id
        if state is None:
            state = RunState(batch.run_id)
        for sequence, event in batch.numbered_events():
            if not isinstance(event.payload, MetricLogged):
                identity = EventId(producer, sequence)
                state = apply(
                    state, batch.run_id, LogicalEvent(identity, event.time_us, event.payload)
                )
        return state

    def write(self, run_id: str, state: RunState, previous: RunState | None = None) -> None:
        """Overwrite the snapshot files of ``run_id`` with ``state`` (run last); when the
        state says the run is deleted, delete its artifact objects too. ``previous`` is the
        state last written (or loaded): a params or tags table equal to its own is not
        written again (the file already holds it).

        Raises:
            StoreWriteError: the store kept failing and the worker is stopping.
        """
        root = self.store.root
        params = state.params_dict()
        if previous is None or params != previous.params_dict():
            self.store.write(
                run_table_path(root, run_id, "params"),
                encode_table(
                    pa.table({"key": list(params), "value": list(params.values())}, PARAMS_SCHEMA)
                ),
            )
        tags = _tag_rows(state)
        if previous is None or tags != _tag_rows(previous):
            self.store.write(
                run_table_path(root, run_id, "tags"),
                encode_table(
                    pa.table(
                        {
                            "namespace": [t[0] for t in tags],
                            "key": [t[1] for t in tags],
                            "value": [t[2] for t in tags],
                        },
                        TAGS_SCHEMA,
                    )
                ),
            )
        plain = state.as_dict()
        row = {
            "name": [plain["name"]],
            "collection": [plain["collection"]],
            "status": [plain["status"]],
            "start_time_us": [plain["start_time_us"]],
            "end_time_us": [plain["end_time_us"]],
            "deleted": [bool(plain["deleted"])],
            "state": [encode_state(self.codec, state, whole=True)],
        }
        self.store.write(
            run_table_path(root, run_id, "run"), encode_table(pa.table(row, RUN_SCHEMA))
        )
        if state.is_deleted:
            delete_run_artifacts(self.store, state)


def _tag_rows(state: RunState) -> list[tuple[str, str, str]]:
    """The rows of the tags table of ``state``: (namespace, key, value)."""
    rows = [("tags", k, v) for k, v in state.tags_dict().items()]
    return rows + [("labels", k, v) for k, v in state.labels_dict().items()]
