"""The flush that precedes every offset commit (and every rebalance) hands every buffered write
to Kafka: the table's changelog writes wait in faust's producer buffer, and a commit that
goes ahead while some are still there covers events whose state the changelog lacks, so the
worker that restores the table next (after a kill or a rebalance) resumes after them with a
stale state, for good (the scale test saw runs end with their last points missing)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from runstream.core.settings import Settings
from runstream.core.source import read_topic
from runstream.processor.app import ProcessorOptions, create_app

pytestmark = pytest.mark.integration

WRITES = 100


async def _flush_on_a_busy_loop(settings: Settings, datadir: Path, topic: str) -> int:
    """Buffer WRITES messages, flush while another task holds the loop 0.15 s at a time
    for 1.5 s (as a worker folding chunks on a loaded machine does), return what the buffer
    still holds after the flush."""
    app = create_app(settings, ProcessorOptions(datadir=datadir))
    producer = app.producer
    await producer.start()
    try:
        channel = app.topic(
            topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )
        for n in range(WRITES):
            channel.send_soon(key=b"run", value=str(n).encode(), partition=0)

        async def busy() -> None:
            for _ in range(10):
                time.sleep(0.15)  # a chunk folded between two turns of the loop
                await asyncio.sleep(0)

        hog = asyncio.ensure_future(busy())
        try:
            await producer.flush()
            left = producer.buffer.size
        finally:
            hog.cancel()
        return left
    finally:
        await producer.stop()


def test_the_flush_before_a_commit_sends_every_buffered_write(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    topic = f"{kafka_settings.topic_prefix}.flushed"
    left = asyncio.run(_flush_on_a_busy_loop(kafka_settings, tmp_path, topic))
    assert left == 0, f"{left} of {WRITES} writes still buffered after the flush"
    values = [record.value for record in read_topic(kafka_settings, topic)]
    assert values == [str(n).encode() for n in range(WRITES)]
