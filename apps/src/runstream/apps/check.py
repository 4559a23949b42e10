"""``runstream check``: one event through the configured tracking URI and back."""

from __future__ import annotations

import time
import uuid

import click

from runstream.contract import (
    Codec,
    Event,
    EventBatch,
    Producer,
    RunStarted,
    decode_batch,
    encode_batch,
)
from runstream.core.kafka_admin import ensure_topics
from runstream.core.settings import Settings
from runstream.core.source import read_topic


@click.command()
@click.option(
    "--tracking-uri", envvar="RUNSTREAM_TRACKING_URI", required=True, help="kafka://host:port"
)
def check(tracking_uri: str) -> None:
    """Produce one RunStarted event to the events topic and read it back."""
    from confluent_kafka import Producer as KafkaProducer

    settings = Settings.resolve(tracking_uri)
    topics = ensure_topics(settings)
    codec = Codec()
    run_id = f"check-{uuid.uuid4().hex[:12]}"
    batch = EventBatch(
        run_id,
        Producer(uuid.uuid4().hex, "check", 0),
        0,
        (
            Event(
                time.time_ns() // 1000,
                RunStarted(start_time_us=time.time_ns() // 1000, name="check"),
            ),
        ),
    )
    producer = KafkaProducer(settings.kafka_config(acks="all", **{"enable.idempotence": True}))
    producer.produce(topics.events, encode_batch(codec, batch), key=run_id.encode())
    if producer.flush(30) != 0:
        raise click.ClickException("the event was not acknowledged within 30 s")
    for record in read_topic(settings, topics.events):
        if record.key == run_id.encode():
            got = decode_batch(codec, record.value)
            click.echo(
                f"ok: run {got.run_id} read back from {topics.events} "
                f"partition {record.partition} offset {record.offset}"
            )
            return
    raise click.ClickException(f"run {run_id} was produced but not read back from {topics.events}")
