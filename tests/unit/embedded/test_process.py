"""The embedded pipeline over local log files: incremental, and safe against a torn tail."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from runstream.apps.embedded import process
from runstream.contract import Codec, EventBatch, MetricLogged, encode_batch
from runstream.contract.layout import METRICS_DIR
from runstream.core.locallog import LogWriter
from runstream.core.logsource import events_folder
from runstream.core.settings import Settings
from runstream.processor.synthetic import workload


def write_log(settings: Settings, batches: list[EventBatch], name: str = "writer") -> list[int]:
    """Append each batch as one block; the file's size after each."""
    codec = Codec()
    writer = LogWriter(events_folder(settings) / f"{name}.avro")
    sizes = []
    for batch in batches:
        writer.append([(batch.run_id, encode_batch(codec, batch))])
        sizes.append(writer.path.stat().st_size)
    writer.close()
    return sizes


def rows(settings: Settings) -> list[tuple[object, ...]]:
    root = Path(settings.store) / METRICS_DIR
    tables = [pq.read_table(path) for path in sorted(root.rglob("*.parquet"))]
    if not tables:
        return []
    table = pa.concat_tables(tables)
    columns = ["key", "step", "timestamp", "value", "producer_id", "sequence"]
    values = [repr(v) for v in table["value"].to_pylist()]
    found = zip(
        *(table[c].to_pylist() for c in columns[:3]),
        values,
        *(table[c].to_pylist() for c in columns[4:]),
        strict=True,
    )
    return sorted(found)


def expected_rows(batches: list[EventBatch]) -> list[tuple[object, ...]]:
    """Every metric point of the stream, each identity once (NaN compared as a string)."""
    out = set()
    for batch in batches:
        for event in batch.logical_events():
            point = event.payload
            if isinstance(point, MetricLogged):
                out.add((point.key, point.step, point.timestamp, repr(point.value), *event.id))
    return sorted(out)


def test_process_compacts_every_point_once_and_is_incremental(tmp_path: Path) -> None:
    settings = Settings.resolve(f"file://{tmp_path}", environ={})
    batches = workload(runs=4, events=4000, seed=3, duplicate_share=0.1).batches
    write_log(settings, batches[: len(batches) // 2], "first")
    first = process(settings)
    assert first.points > 0
    write_log(settings, batches[len(batches) // 2 :], "second")
    second = process(settings)
    third = process(settings)
    assert (third.records, third.points) == (0, 0)
    expected = expected_rows(batches)
    assert first.points + second.points == len(expected)  # duplicates are not new points
    assert rows(settings) == expected


def test_a_log_torn_mid_batch_is_read_up_to_the_last_whole_batch(tmp_path: Path) -> None:
    settings = Settings.resolve(f"file://{tmp_path}", environ={})
    batches = workload(runs=1, events=2000, seed=5, points_per_batch=300, duplicate_share=0).batches
    sizes = write_log(settings, batches)
    path = events_folder(settings) / "writer.avro"
    with path.open("r+b") as handle:  # cut the last batch's block in half
        handle.truncate((sizes[-2] + sizes[-1]) // 2)
    result = process(settings)
    assert result.records == len(batches) - 1
    assert rows(settings) == expected_rows(batches[:-1])


def test_a_run_written_by_several_processes_compacts_while_merges_run(tmp_path: Path) -> None:
    # Each worker process has its own log file, so one run spans several partitions; a
    # partition's merge must not run while another partition's buffer lists the run's files.
    from runstream.contract import Event, MetricColumns, Producer, RunEnded, RunStarted

    settings = Settings.resolve(f"file://{tmp_path}", environ={})
    everything: list[EventBatch] = []
    for rank in range(6):
        producer = Producer(f"worker-{rank}", "host", rank, rank=rank)
        batches = [EventBatch("one-run", producer, 0, (Event(1, RunStarted(start_time_us=1)),))]
        sequence = 1
        for block in range(4):
            steps = list(range(block * 5000, (block + 1) * 5000))
            columns = MetricColumns(
                [f"w{rank}/loss"], [0] * len(steps), steps, [0.5] * len(steps), [1] * len(steps)
            )
            batches.append(EventBatch("one-run", producer, sequence, (), columns))
            sequence += len(steps)
        batches.append(
            EventBatch("one-run", producer, sequence, (Event(2, RunEnded("FINISHED", 2)),))
        )
        write_log(settings, batches, f"worker-{rank}")
        everything += batches
    process(settings)
    assert rows(settings) == expected_rows(everything)


def test_the_store_keeps_every_param_and_whole_values_across_process_calls(
    tmp_path: Path,
) -> None:
    """A state message keeps the least params and cuts long values (run_state v4); the
    store's snapshot must not: 150 params of 6,000 characters, a second process call that
    reloads the snapshot and adds one more, read back with DuckDB."""
    import duckdb

    from runstream.contract.events import Event, ParamLogged, RunStarted
    from runstream.contract.events import Producer as EventProducer
    from runstream.contract.limits import MAX_PARAM_LENGTH, MAX_STATE_PARAM_KEYS

    settings = Settings.resolve(f"file://{tmp_path}", environ={})
    producer = EventProducer("p", "h", 1)
    params = [
        Event(10**15 + i, ParamLogged(f"p{i:03d}", chr(ord("a") + i % 26) * MAX_PARAM_LENGTH))
        for i in range(MAX_STATE_PARAM_KEYS + 50)
    ]
    first = [EventBatch("wide", producer, 0, (Event(10**15, RunStarted(10**15)), *params))]
    write_log(settings, first, "one")
    process(settings)
    later = [EventBatch("wide", producer, 1000, (Event(10**16, ParamLogged("zz", "last")),))]
    write_log(settings, later, "two")
    process(settings)
    path = Path(settings.store) / "runs" / "run_id=wide" / "params.parquet"
    found = duckdb.sql(f"SELECT key, value FROM read_parquet('{path}') ORDER BY key").fetchall()
    expected = sorted((e.payload.key, e.payload.value) for e in params)  # type: ignore[union-attr]
    assert found == [*expected, ("zz", "last")]
