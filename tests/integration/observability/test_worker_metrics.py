"""Each long-running worker, started through the real ``runstream`` command on the shared
stack (this test's own topics, groups and S3 prefix), serves /metrics, /healthz and /readyz;
the metrics, parsed with prometheus_client's own text parser, agree with what the test sent
and with readers that are not the worker: the dead-letter topic read back, the Parquet files
read with pyarrow, the group's lag asked of Kafka by the test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from runstream.core.kafka_admin import ensure_topics
from runstream.core.observability import HEALTH_PATH, METRICS_PATH, READY_PATH
from runstream.core.settings import Settings
from runstream.core.source import read_topic
from runstream.core.topics import DEFAULT_PARTITIONS, Topics
from tests.batches import metric_batch
from tests.integration.compactor.conftest import store_points
from tests.integration.conftest import wait_for
from tests.integration.stream_processor.conftest import produce

pytestmark = pytest.mark.integration

PARTITIONS = 4
RUNS = 6
BATCHES_PER_RUN = 5
POINTS_PER_BATCH = 40  # 20 steps x 2 keys
POISON = (b"poison-run", b"\x00 not an avro batch")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
Start = Callable[..., tuple[subprocess.Popen[bytes], int]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(port: int, path: str) -> tuple[int, str]:
    """Status and body of ``GET http://127.0.0.1:port/path`` (0 when nothing answers)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def scrape(port: int) -> Samples:
    """Every sample of the worker's /metrics, parsed by prometheus_client's parser."""
    status, body = get(port, METRICS_PATH)
    assert status == 200, f"/metrics answered {status}: {body[:200]}"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def total(samples: Samples, name: str) -> float:
    """The sum of every sample named ``name`` (any labels)."""
    return sum(value for (sample, _), value in samples.items() if sample == name)


def lag_by_partition(samples: Samples, name: str) -> dict[int, float]:
    return {
        int(dict(labels)["partition"]): value
        for (sample, labels), value in samples.items()
        if sample == name
    }


def kafka_lag(settings: Settings, topic: str, group: str, partitions: int) -> dict[int, int]:
    """The group's lag asked of Kafka by the test itself (not the worker's collector)."""
    consumer = Consumer(settings.kafka_config(**{"group.id": group}))
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        lags = {}
        for tp in consumer.committed(tps, timeout=10):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), 10)
            lags[tp.partition] = high - (tp.offset if tp.offset >= 0 else low)
        return lags
    finally:
        consumer.close()


def batches() -> list:
    """RUNS runs of BATCHES_PER_RUN batches; each run's last batch ends it."""
    return [
        metric_batch(
            f"run-{run}",
            f"producer-{run}",
            index * POINTS_PER_BATCH,
            ["loss", "acc"],
            index * 20,
            20,
            ended=index == BATCHES_PER_RUN - 1,
            time_us=1_700_000_000_000_000 + index,
        )
        for run in range(RUNS)
        for index in range(BATCHES_PER_RUN)
    ]


@pytest.fixture
def start(s3_settings: Settings, tmp_path: Path) -> Iterator[Start]:
    """Start ``python -m runstream.apps.cli ARGS`` (the ``runstream`` command) with this test's
    settings in its environment and a metrics port of its own; killed at teardown."""
    started: list[subprocess.Popen[bytes]] = []
    env = {
        **os.environ,
        "RUNSTREAM_TRACKING_URI": str(s3_settings.tracking_uri),
        "RUNSTREAM_STORE": s3_settings.store,
        "RUNSTREAM_S3_ENDPOINT": s3_settings.s3_endpoint or "",
        "RUNSTREAM_TOPIC_PREFIX": s3_settings.topic_prefix,
    }

    def run(name: str, *args: str) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        log = (tmp_path / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "runstream.apps.cli", "-v", *args, "--metrics-port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process, port

    yield run
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def wait_ready(process: subprocess.Popen[bytes], port: int) -> None:
    def ready() -> bool:
        assert process.poll() is None, f"the worker exited with {process.returncode}"
        return get(port, READY_PATH)[0] == 200

    wait_for(lambda: get(port, HEALTH_PATH) == (200, "ok\n"), 120, "/healthz answers ok")
    wait_for(ready, 120, "/readyz answers ok")


def test_processor_metrics_count_what_was_sent(
    s3_settings: Settings, unique: str, tmp_path: Path, start: Start
) -> None:
    topics = ensure_topics(s3_settings)  # the processor's default partitions
    group = f"{unique}-processor"
    process, port = start(
        "processor", "processor", "--app-id", group, "--data-dir", str(tmp_path / "tables")
    )
    wait_ready(process, port)
    sent = batches()
    produce(s3_settings, [*sent[:10], POISON, *sent[10:]])
    events = sum(len(batch) for batch in sent)
    points = sum(len(batch.metrics) for batch in sent)

    def counted() -> bool:
        samples = scrape(port)
        return total(samples, "runstream_processor_messages_total") == len(sent) + 1 and all(
            lag == 0
            for lag in lag_by_partition(samples, "runstream_processor_consumer_lag").values()
        )

    wait_for(counted, 120, "every message counted and the lag at 0", every=1)
    samples = scrape(port)
    assert total(samples, "runstream_processor_events_total") == events
    assert total(samples, "runstream_processor_points_total") == points
    assert total(samples, "runstream_processor_dead_letters_total") == 1
    assert total(samples, "runstream_processor_runs_published_total") >= RUNS
    assert total(samples, "runstream_processor_fold_seconds_count") >= 1
    assert total(samples, "runstream_processor_assigned_partitions") == DEFAULT_PARTITIONS
    lags = lag_by_partition(samples, "runstream_processor_consumer_lag")
    assert lags == dict.fromkeys(range(DEFAULT_PARTITIONS), 0.0)
    assert kafka_lag(s3_settings, topics.events, group, DEFAULT_PARTITIONS) == lags
    dead = list(read_topic(s3_settings, Topics(s3_settings.topic_prefix).dead_letters))
    assert [(r.key, r.value) for r in dead] == [POISON]


def test_compactor_metrics_count_what_was_written(
    s3_settings: Settings, unique: str, start: Start
) -> None:
    topics = ensure_topics(s3_settings, partitions=PARTITIONS)
    group = f"{unique}-compactor"
    process, port = start(
        "compactor",
        "compactor",
        "--group",
        group,
        "--rotate-interval",
        "1",
        "--upload-processes",
        "0",
    )
    wait_ready(process, port)
    sent = batches()
    produce(s3_settings, [*sent[:10], POISON, *sent[10:]])
    points = sum(len(batch.metrics) for batch in sent)

    def caught_up() -> bool:
        samples = scrape(port)
        lags = lag_by_partition(samples, "runstream_compactor_consumer_lag")
        return (
            total(samples, "runstream_compactor_records_total") == len(sent) + 1
            and total(samples, "runstream_compactor_writes_in_flight") == 0
            and set(lags) == set(range(PARTITIONS))
            and not any(lags.values())
        )

    wait_for(caught_up, 120, "every message read, written, and the lag at 0", every=1)
    samples = scrape(port)
    lags = lag_by_partition(samples, "runstream_compactor_consumer_lag")
    assert total(samples, "runstream_compactor_points_total") == points
    assert total(samples, "runstream_compactor_dead_letters_total") == 1
    assert total(samples, "runstream_compactor_buffered_points") == 0
    files = total(samples, "runstream_compactor_files_total")
    merges = total(samples, "runstream_compactor_merges_total")
    assert files >= RUNS
    # every part file and every merged file is one timed write
    assert total(samples, "runstream_compactor_write_seconds_count") == files + merges
    assert kafka_lag(s3_settings, topics.events, group, PARTITIONS) == lags
    assert len(store_points(s3_settings)) == points  # pyarrow over the store's Parquet


def test_ui_serves_metrics_and_health(s3_settings: Settings) -> None:
    ensure_topics(s3_settings, partitions=PARTITIONS)
    port = free_port()
    env = {
        **os.environ,
        "RUNSTREAM_TRACKING_URI": str(s3_settings.tracking_uri),
        "RUNSTREAM_STORE": s3_settings.store,
        "RUNSTREAM_S3_ENDPOINT": s3_settings.s3_endpoint or "",
        "RUNSTREAM_TOPIC_PREFIX": s3_settings.topic_prefix,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "runstream.apps.cli", "ui", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(process, port)
        for _ in range(3):
            assert get(port, "/api/runs")[0] == 200
        assert get(port, "/api/runs/no-such-run")[0] == 404
        samples = scrape(port)
        key = ("runstream_ui_requests_total", (("route", "/api/runs"), ("status", "200")))
        assert samples[key] == 3
        missing = ("route", "/api/runs/{run_id}"), ("status", "404")
        assert samples[("runstream_ui_requests_total", missing)] == 1
        assert samples[("runstream_ui_request_seconds_count", (("route", "/api/runs"),))] == 3
    finally:
        process.terminate()
        process.wait(20)
