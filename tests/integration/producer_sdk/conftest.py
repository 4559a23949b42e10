"""Fixtures of the producer SDK's integration tests: an SDK client on a fresh topic prefix of
the shared stack, a reader of what landed, and a private Kafka broker started and stopped by
the test itself (so the shared broker is never stopped)."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runstream.contract import Codec, LogicalEvent, Producer, decode_batch
from runstream.core.kafka_admin import ensure_topics
from runstream.core.settings import Settings
from runstream.core.source import read_topic
from runstream.core.topics import Topics
from runstream.tracking import Client

REPO = Path(__file__).resolve().parents[3]
KAFKA_LIBS = (
    Path(os.environ.get("RUNSTREAM_CACHE_DIR", Path.home() / ".cache" / "runstream"))
    / "kafka-3.9.1"
    / "libs"
)
KAFKA_START_SECONDS = 120.0


def topic_events(settings: Settings) -> list[tuple[Producer, LogicalEvent]]:
    """Every event on the settings' events topic, with the producer that wrote it."""
    codec = Codec()
    events = []
    for record in read_topic(settings, Topics(settings.topic_prefix).events, timeout=30.0):
        batch = decode_batch(codec, record.value)
        assert record.key == batch.run_id.encode()
        events.extend((batch.producer, event) for event in batch.logical_events())
    return events


@pytest.fixture
def sdk_settings(kafka_settings: Settings) -> Settings:
    """The shared broker, this test's own topic prefix, topics created."""
    ensure_topics(kafka_settings, partitions=3)
    return kafka_settings


@pytest.fixture
def sdk_client(sdk_settings: Settings, tmp_path: Path) -> Iterator[Client]:
    """An SDK client on ``sdk_settings`` spilling under this test's tmp folder."""
    client = Client(settings=sdk_settings, spill_dir=tmp_path / "spill")
    yield client
    client.close(10.0)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrivateKafka:
    """A single-node KRaft broker of one test: configured now, started when asked."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """host:port of the broker."""
        return f"127.0.0.1:{self.port}"

    def _java(self, *args: str) -> list[str]:
        return [
            "java",
            "-Xmx384m",
            "-cp",
            f"{KAFKA_LIBS}/*",
            f"-Dlog4j.configuration=file:{REPO}/deploy/kafka/log4j.properties",
            *args,
        ]

    def configure(self) -> Path:
        """Write server.properties from deploy/kafka's, ports and folders rewritten."""
        controller = free_port()
        lines = []
        for line in (REPO / "deploy" / "kafka" / "server.properties").read_text().splitlines():
            line = line.replace("127.0.0.1:9093", f"127.0.0.1:{controller}")
            line = line.replace("127.0.0.1:9092", f"127.0.0.1:{self.port}")
            lines.append(line)
        lines.append(f"log.dirs={self.folder / 'data'}")
        path = self.folder / "server.properties"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> None:
        """Start the broker (formatting its storage the first time); return when it answers.

        Fails the test (with the broker's log) if it does not start in time.
        """
        assert KAFKA_LIBS.is_dir(), f"{KAFKA_LIBS} missing: run deploy/stack up once"
        properties = self.folder / "server.properties"
        log = self.folder / "kafka.log"
        offset = log.stat().st_size if log.exists() else 0
        with log.open("ab") as out:
            if not properties.exists():  # first start: configure and format the storage
                self.configure()
                cluster = _cluster_id()
                format_storage = ["kafka.tools.StorageTool", "format", "-t", cluster]
                subprocess.run(
                    self._java(*format_storage, "-c", str(properties)),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    check=True,
                    timeout=120,
                )
            self.process = subprocess.Popen(
                self._java("kafka.Kafka", str(properties)), stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + KAFKA_START_SECONDS
        while b"Kafka Server started" not in log.read_bytes()[offset:]:
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"private kafka did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)

    def stop(self) -> None:
        """Stop the broker this fixture started (by its pid), if it runs; ``start`` again
        restarts it on the same port and data."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[PrivateKafka]:
    """A private broker on a free port, NOT started: the test starts it when it wants."""
    folder = tmp_path / "private-kafka"
    folder.mkdir()
    broker = PrivateKafka(free_port(), folder)
    yield broker
    broker.stop()


def _cluster_id() -> str:
    """A KRaft cluster id as Kafka's ``Uuid.randomUuid`` makes one: base64url of 16 random
    bytes, never starting with "-" (the storage tool's parser would take it for an option:
    1 fresh run in 64 failed so)."""
    while True:
        cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster.startswith("-"):
            return cluster
