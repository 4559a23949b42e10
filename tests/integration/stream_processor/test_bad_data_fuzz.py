"""Issue 17's fuzz test on the local stack: random and mutated messages interleaved with good
traffic on one events topic, read by a processor worker, a compactor and the query tail.
The worker never exits, the runs topic equals the reducer over the good batches, every bad
message is on the dead-letter topic with a reason, and every good point is in Parquet (read
by pyarrow) and in the tail exactly once."""

from __future__ import annotations

import io
import time

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runstream.compactor.snapshots import Snapshots
from runstream.compactor.store import Store
from runstream.compactor.worker import Compactor
from runstream.contract import Codec, EventBatch, MetricColumns, Producer
from runstream.contract.deadletter import REASON
from runstream.contract.events import Event, ParamLogged, RunStarted, TagSet
from runstream.contract.layout import METRICS_DIR
from runstream.contract.limits import (
    MAX_PARAM_LENGTH,
    MAX_STATE_BYTES,
    MAX_STATE_METRIC_KEYS,
    MAX_STATE_PARAM_KEYS,
    MAX_STATE_TAG_KEYS,
    MAX_STATE_VALUE_BYTES,
    MAX_TAG_LENGTH,
)
from runstream.contract.state import decode_state
from runstream.contract.versions import latest
from runstream.core.filesystem import open_store
from runstream.core.settings import Settings
from runstream.core.source import KafkaSource
from runstream.core.topics import Topics
from runstream.query.tail import KafkaEventLog, Tail
from tests.fuzzing import points_of, traffic

from .conftest import Item, Worker, live_runs, produce, wait_for_runs
from .test_processor import _dead_letters

pytestmark = pytest.mark.integration


@settings(
    max_examples=1,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_bad_messages_stop_no_reader_and_hide_no_good_point(
    s3_settings: Settings,
    topics: Topics,
    start_worker: Worker,
    unique: str,
    data: st.DataObject,
) -> None:
    kafka_settings = s3_settings  # the same settings; its S3 prefix is removed afterwards
    goods, messages = traffic(data, 12)
    items: list[Item] = [(key.encode(), value) for key, value, _ in messages]
    produce(kafka_settings, items)
    worker = start_worker("w1")

    fs, root = open_store(kafka_settings)
    store = Store(fs, root)
    codec = Codec()
    source = KafkaSource(kafka_settings, topics.events, f"{unique}-compactor")
    compactor = Compactor(source, store, codec, snapshots=Snapshots(store, codec))
    deadline = time.monotonic() + 60
    while compactor.stats.records < len(messages) and time.monotonic() < deadline:
        compactor.step()
    compactor.flush(force=True)
    source.close()
    bad = sorted(value for _, value, good in messages if not good)
    assert compactor.stats.skipped == len(bad)

    wait_for_runs(kafka_settings, goods)
    assert worker.poll() is None, "the processor exited"
    letters = _dead_letters(kafka_settings, topics.dead_letters)
    assert sorted(value for value, _ in letters) == bad
    assert all(headers[REASON] for _, headers in letters)

    files = fs.glob(f"{root}/{METRICS_DIR}/*/*.parquet")
    table = pa.concat_tables([pq.read_table(path, filesystem=fs) for path in files])
    columns = ("producer_id", "sequence", "key", "step", "value")
    rows = list(zip(*(table[c].to_pylist() for c in columns), strict=True))
    assert sorted(rows) == points_of(goods)

    tail = Tail(KafkaEventLog(kafka_settings, Topics(kafka_settings.topic_prefix).events))
    try:
        assert tail.refresh() == len(messages)
        held = [tail.points(run_id, {}) for run_id in ("run-a", "run-b")]
        tail_rows = [
            row for t in held for row in zip(*(t[c].to_pylist() for c in columns), strict=True)
        ]
        assert sorted(tail_rows) == points_of(goods)
        assert tail.skipped == len(bad)
    finally:
        tail.close()


def test_a_run_with_30000_metric_keys_reaches_the_runs_topic(
    kafka_settings: Settings, topics: Topics, start_worker: Worker
) -> None:
    batches = []
    for part in range(10):
        keys = [f"metric/{part:02d}/{i:05d}" for i in range(3000)]
        columns = MetricColumns(keys, list(range(3000)), [1] * 3000, [1.0] * 3000, [1] * 3000)
        batches.append(EventBatch("wide", Producer("p", "h", 1), part * 3000, (), columns))
    produce(kafka_settings, batches)
    worker = start_worker("w1")
    wait_for_runs(kafka_settings, batches)
    assert worker.poll() is None, "the processor exited"
    state = decode_state(Codec(), live_runs(kafka_settings)["wide"])
    assert state.metrics_truncated and len(state.metrics) == MAX_STATE_METRIC_KEYS


def test_a_run_whose_params_and_tags_pass_1_mb_reaches_the_runs_topic(
    kafka_settings: Settings, topics: Topics, start_worker: Worker
) -> None:
    """300 params of 6,000 characters (1.8 MB) and 200 tags and labels of 5,000 (2 MB), sent in
    batches that each fit a message, then a small run: both states land on the runs topic,
    read back with a plain consumer and fastavro, and the worker keeps going."""
    producer = Producer("p", "h", 1)
    start = Event(10**15, RunStarted(10**15, name="wide-params"))
    params = [
        Event(10**15 + i, ParamLogged(f"param/{i:04d}", chr(ord("a") + i % 26) * MAX_PARAM_LENGTH))
        for i in range(300)
    ]
    tags = [
        Event(10**15 + i, TagSet(f"tag/{i:04d}", "t" * MAX_TAG_LENGTH, namespace))
        for i in range(100)
        for namespace in ("tags", "labels")
    ]
    events = [start, *params, *tags]
    batches = [
        EventBatch("wide-params", producer, first, tuple(events[first : first + 100]))
        for first in range(0, len(events), 100)
    ]
    batches.append(EventBatch("after", producer, 0, (Event(10**15, RunStarted(10**15)),)))
    produce(kafka_settings, batches)
    worker = start_worker("w1")
    live = wait_for_runs(kafka_settings, batches)
    assert worker.poll() is None, "the processor exited"
    assert len(live["wide-params"]) < MAX_STATE_BYTES
    data = live["wide-params"]
    assert data[:2] == b"\xc3\x01"
    schema = fastavro.parse_schema(latest("run_state").raw)
    record = fastavro.schemaless_reader(io.BytesIO(data[10:]), schema, None)
    assert isinstance(record, dict)
    assert record["name"]["value"] == "wide-params"
    assert record["params_truncated"] and record["tags_truncated"] and record["labels_truncated"]
    assert sorted(record["params"]) == [f"param/{i:04d}" for i in range(MAX_STATE_PARAM_KEYS)]
    assert len(record["tags"]) == len(record["labels"]) == MAX_STATE_TAG_KEYS
    first = record["params"]["param/0000"]
    assert first["cut"] and first["value"] == "a" * MAX_STATE_VALUE_BYTES
    assert "after" in live
