"""deploy/stack itself, on a second stack of its own (other ports, its own state folder):
`up` is idempotent, Kafka killed with SIGKILL comes back with its data, `down` leaves no
server process."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import s3fs
from confluent_kafka import Consumer, Producer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STACK = Path(__file__).resolve().parents[2] / "deploy" / "stack"
KAFKA_PORT = 29092
S3_PORT = 28333


@pytest.fixture
def second_stack(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "RUNSTREAM_STATE_DIR": str(tmp_path / "state"),
        "RUNSTREAM_STACK_KAFKA_PORT": str(KAFKA_PORT),
        "RUNSTREAM_STACK_S3_PORT": str(S3_PORT),
        "RUNSTREAM_STACK_WEED_BASE": "30000",
    }
    yield env
    subprocess.run([str(STACK), "down"], env=env, check=False, capture_output=True)


def _stack(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(STACK), *args], env=env, capture_output=True, text=True, timeout=300)


def _processes_under(folder: str) -> list[str]:
    listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in listing.splitlines() if folder in line and "ps -eo" not in line]


def test_up_twice_kill_kafka_up_again_and_down(
    second_stack: dict[str, str], tmp_path: Path
) -> None:
    first = _stack(second_stack, "up")
    assert first.returncode == 0, first.stderr
    again = _stack(second_stack, "up")
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stderr

    bootstrap = f"127.0.0.1:{KAFKA_PORT}"
    topic = f"t{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.produce(topic, b"survives", key=b"k")
    assert producer.flush(30) == 0

    fs = s3fs.S3FileSystem(
        key="runstream", secret="runstream-secret", endpoint_url=f"http://127.0.0.1:{S3_PORT}"
    )
    fs.pipe("runstream/object", b"kept")

    kafka_pid = int((tmp_path / "state" / "kafka" / "kafka.pid").read_text())
    os.kill(kafka_pid, signal.SIGKILL)
    time.sleep(1)
    assert _stack(second_stack, "status").returncode == 1

    back = _stack(second_stack, "up")
    assert back.returncode == 0, back.stderr
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    values = []
    deadline = time.monotonic() + 60
    while not values and time.monotonic() < deadline:
        values = [m.value() for m in consumer.consume(10, 1.0) if m.error() is None]
    consumer.close()
    assert values == [b"survives"]
    assert fs.cat("runstream/object") == b"kept"

    down = _stack(second_stack, "down")
    assert down.returncode == 0, down.stderr
    assert _processes_under(str(tmp_path / "state")) == []


def test_a_server_that_cannot_start_fails_with_its_log(second_stack: dict[str, str]) -> None:
    env = {**second_stack, "RUNSTREAM_STACK_KAFKA_PORT": "9092"}  # taken by the shared stack
    result = _stack(env, "up")
    assert result.returncode != 0
    assert "9092" in result.stderr
