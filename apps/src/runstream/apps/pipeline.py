"""Run the distributed pipeline until it has caught up with the events topic, then stop.

For the demo and for batch jobs (backfills): the stream processor runs as its own worker
process (the same ``runstream processor`` a deployment runs) and the compactor in this
process, each in its own consumer group, until both have committed every offset that was
on the topic.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from runstream.core.errors import RunstreamError
from runstream.core.settings import Settings
from runstream.core.topics import Topics

logger = logging.getLogger(__name__)


class PipelineError(RunstreamError):
    """The pipeline did not catch up in time, or a worker died; the message says which."""


@dataclass(frozen=True)
class DrainResult:
    """What :func:`drain` did: points and files the compactor wrote, and the number of runs
    on the runs topic (deleted runs included, as tombstones)."""

    points: int
    files: int
    states: int


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """The high watermark of every partition of ``topic``."""
    consumer = Consumer(settings.kafka_config(**{"group.id": "runstream-lag-probe"}))
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in metadata.partitions
        }
    finally:
        consumer.close()


def caught_up(settings: Settings, topic: str, group: str, targets: dict[int, int]) -> bool:
    """True when ``group`` has committed at least ``targets`` (partition -> offset)."""
    consumer = Consumer(settings.kafka_config(**{"group.id": group}))
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in targets], timeout=10)
    finally:
        consumer.close()
    return all(tp.offset >= targets[tp.partition] for tp in committed if targets[tp.partition] > 0)


def _processor_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["RUNSTREAM_TRACKING_URI"] = str(settings.tracking_uri)
    env["RUNSTREAM_STORE"] = settings.store
    env["RUNSTREAM_TOPIC_PREFIX"] = settings.topic_prefix
    if settings.s3_endpoint:
        env["RUNSTREAM_S3_ENDPOINT"] = settings.s3_endpoint
    for name, value in settings.kafka.items():
        env[f"RUNSTREAM_KAFKA_{name.upper().replace('.', '_')}"] = str(value)
    return env


def drain(settings: Settings, timeout: float = 300.0) -> DrainResult:
    """Run the stream processor and the compactor until both have committed every offset of
    the events topic as it was when called; then stop them.

    Raises:
        PipelineError: they did not catch up within ``timeout`` s, or the processor died.
    """
    from runstream.compactor.exceptions import StoreWriteError
    from runstream.compactor.snapshots import Snapshots
    from runstream.compactor.store import Store
    from runstream.compactor.worker import Compactor
    from runstream.contract.codec import Codec
    from runstream.core.filesystem import open_store
    from runstream.core.source import KafkaSource, read_topic

    topics = Topics(settings.topic_prefix)
    targets = end_offsets(settings, topics.events)
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="runstream-processor-") as data_dir:
        processor = subprocess.Popen(
            [sys.executable, "-m", "runstream.processor", "processor", "--data-dir", data_dir],
            env=_processor_env(settings),
        )
        try:
            fs, root = open_store(settings)
            stop = threading.Event()  # set at the deadline: stops the store's retries too
            timer = threading.Timer(max(0.0, deadline - time.monotonic()), stop.set)
            timer.start()
            store = Store(fs, root, stop=stop)
            codec = Codec()
            source = KafkaSource(settings, topics.events, topics.compactor_group)
            worker = Compactor(source, store, codec, snapshots=Snapshots(store, codec), stop=stop)
            try:
                while not caught_up(settings, topics.events, topics.compactor_group, targets):
                    _check(processor, deadline, "compactor")
                    for _ in range(20):
                        worker.step()
                    worker.flush(force=True)
            except StoreWriteError as error:
                raise PipelineError(
                    f"the compactor could not write to {settings.store}: {error}"
                ) from error
            finally:
                timer.cancel()
                source.close()
            while not caught_up(settings, topics.events, topics.processor_group, targets):
                _check(processor, deadline, "stream processor")
                time.sleep(0.5)
        finally:
            processor.send_signal(signal.SIGTERM)
            try:
                processor.wait(30)
            except subprocess.TimeoutExpired:
                processor.kill()
    states = {record.key for record in read_topic(settings, topics.runs)}
    logger.info("runs topic holds %d run states", len(states))
    return DrainResult(worker.stats.points, worker.stats.files, len(states))


def _check(processor: subprocess.Popen[bytes], deadline: float, waiting_for: str) -> None:
    if processor.poll() is not None:
        raise PipelineError(f"the stream processor exited with code {processor.returncode}")
    if time.monotonic() > deadline:
        raise PipelineError(f"the {waiting_for} did not catch up with the events topic in time")
