"""Fixtures of the processor's integration tests: this test's topics, workers run as
subprocesses (so they can be SIGKILLed), producing batches, reading the runs topic, and
waiting until it equals the reducer over the ground truth."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from runstream.contract import Codec, EventBatch, encode_batch
from runstream.contract.state import RunState, decode_state, encode_state, fold
from runstream.core.kafka_admin import ensure_topics
from runstream.core.settings import Settings
from runstream.core.source import read_topic
from runstream.core.topics import Topics

ROOT = Path(__file__).parents[3]
Worker = Callable[..., subprocess.Popen[bytes]]
Item = EventBatch | tuple[bytes | None, bytes]


def produce(settings: Settings, items: Iterable[EventBatch | tuple[bytes | None, bytes]]) -> int:
    """Send batches (encoded) or raw (key, value) pairs to the events topic, in order."""
    codec = Codec()
    producer = Producer(settings.kafka_config(**{"enable.idempotence": True, "linger.ms": 20}))
    topic = Topics(settings.topic_prefix).events
    sent = 0
    for item in items:
        if isinstance(item, EventBatch):
            key, value = item.run_id.encode(), encode_batch(codec, item)
        else:
            key, value = item
        producer.produce(topic, value, key)
        producer.poll(0)
        sent += 1
    assert producer.flush(30) == 0, "messages still unsent after 30 s"
    return sent


def live_runs(settings: Settings) -> dict[str, bytes]:
    """The runs topic as a reader sees it: last value per key, tombstones removed."""
    latest: dict[str, bytes | None] = {}
    for record in read_topic(settings, Topics(settings.topic_prefix).runs):
        assert record.key is not None
        latest[record.key.decode()] = record.value
    return {key: value for key, value in latest.items() if value is not None}


def expected_runs(states: dict[str, RunState]) -> dict[str, bytes]:
    """What the runs topic must hold for these states."""
    codec = Codec()
    return {run: encode_state(codec, s) for run, s in states.items() if not s.is_deleted}


def wait_for_runs(
    settings: Settings, batches: list[EventBatch], timeout: float = 180.0
) -> dict[str, bytes]:
    """Wait until the runs topic equals the reducer over ``batches``; fail with the diff."""
    expected = expected_runs(fold(batches))
    deadline = time.monotonic() + timeout
    live: dict[str, bytes] = {}
    while time.monotonic() < deadline:
        live = live_runs(settings)
        if live == expected:
            return live
        time.sleep(2)
    missing = sorted(set(expected) - set(live))
    extra = sorted(set(live) - set(expected))
    differ = sorted(r for r in set(live) & set(expected) if live[r] != expected[r])
    codec = Codec()
    details = []
    for run_id in differ[:3]:
        got, want = decode_state(codec, live[run_id]), decode_state(codec, expected[run_id])
        fields = [n for n in RunState.__dataclass_fields__ if getattr(got, n) != getattr(want, n)]
        details += [f"{run_id}.{n}: live {getattr(got, n)} != {getattr(want, n)}" for n in fields]
    pytest.fail(
        f"runs topic != reducer after {timeout} s: {len(missing)} missing {missing[:5]}, "
        f"{len(extra)} extra {extra[:5]}, {len(differ)} differ {differ[:5]}\n" + "\n".join(details)
    )


@pytest.fixture
def topics(kafka_settings: Settings) -> Topics:
    """This test's topics, created."""
    return ensure_topics(kafka_settings)


@pytest.fixture
def start_worker(kafka_settings: Settings, unique: str, tmp_path: Path) -> Iterator[Worker]:
    """Start a processor worker (``python -m runstream.processor processor``) in this test's
    consumer group; every worker still running at the end is stopped."""
    started: list[subprocess.Popen[bytes]] = []
    env = {
        **os.environ,
        "RUNSTREAM_TRACKING_URI": str(kafka_settings.tracking_uri),
        "RUNSTREAM_TOPIC_PREFIX": kafka_settings.topic_prefix,
    }

    def start(name: str, *options: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "runstream.processor",
                "processor",
                "--app-id",
                f"{unique}-processor",
                "--data-dir",
                str(tmp_path / name),
                "--loglevel",
                "INFO",  # the log stays in the test's tmp folder, for a post-mortem
                *options,
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(30)


@pytest.fixture
def send(kafka_settings: Settings) -> Callable[[Iterable[Item]], int]:
    """Send batches or raw (key, value) pairs to this test's events topic."""
    return lambda items: produce(kafka_settings, items)


@pytest.fixture
def runs_equal_reducer(kafka_settings: Settings) -> Callable[[list[EventBatch]], dict[str, bytes]]:
    """Wait until this test's runs topic equals the reducer over the batches given."""
    return lambda batches: wait_for_runs(kafka_settings, batches)


@pytest.fixture
def replay_cli(kafka_settings: Settings) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m runstream.processor replay ARGS`` against this test's topics."""
    env = {
        **os.environ,
        "RUNSTREAM_TRACKING_URI": str(kafka_settings.tracking_uri),
        "RUNSTREAM_TOPIC_PREFIX": kafka_settings.topic_prefix,
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runstream.processor", "replay", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    return run
