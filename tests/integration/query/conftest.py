"""Fixtures of the query integration tests: this test's topics and S3 prefix (with helpers to
produce batches to Kafka and to write Parquet files at the store layout the way the compactor
does), and an engine over them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Producer as KafkaProducer

from runstream.contract import Codec, EventBatch, MetricLogged, encode_batch
from runstream.contract.layout import part_path
from runstream.contract.parquet import COMPRESSION, METRIC_SCHEMA, SORT_KEYS
from runstream.core.filesystem import open_store
from runstream.core.kafka_admin import ensure_topics
from runstream.core.settings import Settings
from runstream.core.topics import Topics
from runstream.query import QueryEngine


@dataclass(frozen=True)
class Sent:
    """A produced batch and where it landed."""

    batch: EventBatch
    partition: int
    offset: int


class Stack:
    """The test's own topics and S3 prefix, with helpers to write events and Parquet."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics: Topics = ensure_topics(settings)
        self.codec = Codec()
        self.fs, self.root = open_store(settings)
        self._producer = KafkaProducer(
            settings.kafka_config(acks="all", **{"enable.idempotence": True, "linger.ms": 5})
        )

    def produce(self, batches: Iterable[EventBatch], partition: int | None = None) -> list[Sent]:
        """Produce each batch as one message keyed by its run id (to ``partition`` if given);
        wait for every ack."""
        sent: list[Sent] = []
        errors: list[str] = []

        def delivered(batch: EventBatch) -> object:
            def callback(error: object, message: object) -> None:
                if error is not None:
                    errors.append(str(error))
                else:
                    sent.append(Sent(batch, message.partition(), message.offset()))  # type: ignore[attr-defined]

            return callback

        for batch in batches:
            self._producer.produce(
                self.topics.events,
                encode_batch(self.codec, batch),
                key=batch.run_id.encode(),
                on_delivery=delivered(batch),
                **({} if partition is None else {"partition": partition}),
            )
            self._producer.poll(0)
        assert self._producer.flush(30) == 0, "messages not acknowledged within 30 s"
        assert not errors, errors
        return sorted(sent, key=lambda s: (s.partition, s.offset))

    def compact(self, sent: list[Sent]) -> str:
        """Write the metric points of ``sent`` (one run, one partition) as one part file."""
        run_ids = {s.batch.run_id for s in sent}
        partitions = {s.partition for s in sent}
        assert len(run_ids) == 1 and len(partitions) == 1
        rows: dict[str, list[object]] = {name: [] for name in METRIC_SCHEMA.names}
        for s in sent:
            for event in s.batch.logical_events():
                point = event.payload
                if isinstance(point, MetricLogged):
                    for name, value in (
                        ("key", point.key),
                        ("step", point.step),
                        ("timestamp", point.timestamp),
                        ("value", point.value),
                        ("producer_id", event.id.producer),
                        ("sequence", event.id.sequence),
                        ("partition", s.partition),
                        ("offset", s.offset),
                    ):
                        rows[name].append(value)
        table = pa.table(rows, schema=METRIC_SCHEMA).sort_by(SORT_KEYS)
        path = part_path(
            self.root,
            run_ids.pop(),
            partitions.pop(),
            min(s.offset for s in sent),
            max(s.offset for s in sent),
        )
        with self.fs.open(path, "wb") as file:
            pq.write_table(table, file, compression=COMPRESSION)
        return path

    def close(self) -> None:
        """Flush the producer."""
        self._producer.flush(10)


@pytest.fixture
def stack_env(s3_settings: Settings) -> Iterator[Stack]:
    """This test's topics and S3 prefix (removed afterwards)."""
    env = Stack(s3_settings)
    yield env
    env.close()


@pytest.fixture
def engine(stack_env: Stack) -> Iterator[QueryEngine]:
    """A query engine over this test's events topic and store."""
    with QueryEngine.from_settings(stack_env.settings) as query_engine:
        yield query_engine
