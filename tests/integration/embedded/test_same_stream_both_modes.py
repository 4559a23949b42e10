"""The same event stream through the embedded mode and through Kafka (processor + compactor)
gives equal run state and equal Parquet rows."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Producer

from runstream.apps.embedded import process
from runstream.apps.pipeline import drain
from runstream.compactor.snapshots import Snapshots
from runstream.compactor.store import Store
from runstream.contract import Codec, encode_batch
from runstream.contract.layout import METRICS_DIR
from runstream.contract.state import decode_state, fold
from runstream.core.filesystem import open_store
from runstream.core.kafka_admin import ensure_topics
from runstream.core.locallog import LogWriter
from runstream.core.logsource import events_folder
from runstream.core.settings import Settings
from runstream.core.source import read_topic
from runstream.processor.synthetic import workload

pytestmark = pytest.mark.integration

COLUMNS = ["key", "step", "timestamp", "value", "producer_id", "sequence"]


def _rows(settings: Settings) -> list[tuple[object, ...]]:
    fs, root = open_store(settings)
    paths = sorted(fs.glob(f"{root}/{METRICS_DIR}/run_id=*/*.parquet"))
    tables = []
    for path in paths:
        with fs.open(path, "rb") as handle:
            tables.append(pq.read_table(handle, columns=COLUMNS))
    table = pa.concat_tables(tables)
    values = [repr(v) for v in table["value"].to_pylist()]
    columns = [table[c].to_pylist() for c in COLUMNS]
    columns[3] = values
    return sorted(zip(*columns, strict=True))


def _snapshots(settings: Settings, run_ids: list[str]) -> dict[str, object]:
    fs, root = open_store(settings)
    snapshots = Snapshots(Store(fs, root), Codec())
    return {run_id: snapshots.load(run_id) for run_id in run_ids}


def test_embedded_and_kafka_agree(tmp_path: Path, s3_settings: Settings) -> None:
    stream = workload(runs=6, events=6000, seed=11, duplicate_share=0.05)
    codec = Codec()
    messages = [(b.run_id, encode_batch(codec, b)) for b in stream.batches]
    run_ids = sorted({b.run_id for b in stream.batches})

    embedded = Settings.resolve(f"file://{tmp_path}", environ={})
    writer = LogWriter(events_folder(embedded) / "writer.avro")
    for run_id, value in messages:
        writer.append([(run_id, value)])
    writer.close()
    process(embedded)

    topics = ensure_topics(s3_settings)
    producer = Producer(s3_settings.kafka_config(acks="all", **{"enable.idempotence": True}))
    for run_id, value in messages:
        producer.produce(topics.events, value, key=run_id.encode())
        producer.poll(0)
    assert producer.flush(30) == 0
    result = drain(s3_settings, timeout=240)
    assert result.states == len(run_ids)

    assert _rows(embedded) == _rows(s3_settings)
    assert _snapshots(embedded, run_ids) == _snapshots(s3_settings, run_ids)

    truth = fold(stream.batches)
    published: dict[str, object] = {}
    for record in read_topic(s3_settings, topics.runs):
        assert record.key is not None
        value = record.value
        published[record.key.decode()] = None if value is None else decode_state(codec, value)
    assert published == {r: None if truth[r].is_deleted else truth[r] for r in run_ids}
