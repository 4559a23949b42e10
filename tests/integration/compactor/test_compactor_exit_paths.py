"""A compactor that cannot write, in every exit path: the store refuses (a wrong secret), is
unreachable (the server stopped) or hangs (the server frozen with SIGSTOP), and the worker is
stopped (SIGTERM), killed (SIGKILL) or crashes (an exception raised in its main thread at
that moment). It must commit nothing it has not written: a good worker started afterwards
writes every point exactly once. Counted with DuckDB over the Parquet files (s3fs, not
Runstream's reader)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import duckdb
import pytest
import s3fs
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka import Producer as KafkaProducer

from runstream.core.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = 4
GRACE_S = 20.0  # a stop that takes longer is a kill, as an orchestrator's grace period
ARGS = ("--max-points", "2000", "--rotate-interval", "1")


def committed(settings: Settings, topic: str, group: str) -> dict[int, int]:
    consumer = Consumer(settings.kafka_config(**{"group.id": group}))
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
        return {tp.partition: tp.offset for tp in tps if tp.offset >= 0}
    finally:
        consumer.close()


def duckdb_identities(endpoint: str, root: str) -> tuple[int, int, set[tuple[str, str, int]]]:
    """(rows, distinct identities, the identities) of every Parquet file under metrics/
    (read again when a merge deletes a file between DuckDB's listing and its read)."""
    for _ in range(20):
        try:
            return _duckdb_identities(endpoint, root)
        except duckdb.Error as error:
            if "does not exist" not in str(error):
                raise
            time.sleep(0.2)
    return _duckdb_identities(endpoint, root)


def _duckdb_identities(endpoint: str, root: str) -> tuple[int, int, set[tuple[str, str, int]]]:
    fs = s3fs.S3FileSystem(
        key=os.environ["AWS_ACCESS_KEY_ID"],
        secret=os.environ["AWS_SECRET_ACCESS_KEY"],
        endpoint_url=endpoint,
        skip_instance_cache=True,
    )
    if not fs.exists(f"{root}/metrics"):
        return 0, 0, set()
    connection = duckdb.connect()
    try:
        connection.register_filesystem(fs)
        relation = f"read_parquet('s3://{root}/metrics/*/*.parquet', hive_partitioning = true)"
        rows, distinct = connection.execute(
            f"SELECT count(*), count(DISTINCT (run_id, producer_id, sequence)) FROM {relation}"
        ).fetchone()  # type: ignore[misc]
        identities = connection.execute(
            f"SELECT run_id, producer_id, sequence FROM {relation}"
        ).fetchall()
    finally:
        connection.close()
    return rows, distinct, {(str(r), str(p), int(s)) for r, p, s in identities}


def exit_by(process: subprocess.Popen[bytes], how: str) -> str:
    """End ``process`` the way ``how`` says; what happened."""
    if process.poll() is not None:
        return f"had exited by itself ({process.returncode})"
    if how == "sigkill":
        process.send_signal(signal.SIGKILL)
    else:
        process.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGUSR1)
    try:
        process.wait(GRACE_S)
        return f"exited ({process.returncode})"
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
        return f"killed after {GRACE_S:.0f}s"


@contextmanager
def store_fault(fault: str, private_s3) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    """Make the store fail as ``fault`` says while inside; the env of a worker that meets it."""
    env = {"RUNSTREAM_S3_ENDPOINT": private_s3.endpoint}
    if fault == "refuses":
        yield {**env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    elif fault == "unreachable":
        private_s3.stop()
        try:
            yield env
        finally:
            private_s3.start()
    else:
        os.kill(private_s3.process.pid, signal.SIGSTOP)
        try:
            yield env
        finally:
            os.kill(private_s3.process.pid, signal.SIGCONT)


@pytest.mark.parametrize("how", ["sigterm", "sigkill", "crash"])
@pytest.mark.parametrize("fault", ["refuses", "unreachable", "hangs"])
def test_a_worker_that_cannot_write_commits_nothing_unwritten_however_it_ends(
    helpers, produce, compactor_process, s3_settings, private_s3, events_topic, unique, fault, how
):
    store = replace(s3_settings, s3_endpoint=private_s3.endpoint)
    root = store.store.removeprefix("s3://")
    group = f"{unique}-compactor"
    good_env = {"RUNSTREAM_S3_ENDPOINT": private_s3.endpoint}
    keys = ["loss", "acc"]
    first = [
        helpers.metric_batch(f"r{r}", f"p{r}", i * 1000, keys, i * 500, 500)
        for r in range(3)
        for i in range(4)
    ]
    second = [
        helpers.metric_batch(f"r{r}", f"p{r}", 4000 + i * 1000, keys, 2000 + i * 500, 500, i == 3)
        for r in range(3)
        for i in range(4)
    ]
    truth = set(helpers.truth_of(first + second))
    # 1. a good worker writes and commits the first half, and skips a message with no value
    produce(first[:6])
    tombstones = KafkaProducer(s3_settings.kafka_config())
    tombstones.produce(events_topic, None, b"r0")
    assert tombstones.flush(30) == 0
    produce(first[6:])
    good = compactor_process(*ARGS, env=good_env, static=False)
    helpers.wait_for(
        lambda: sum(committed(s3_settings, events_topic, group).values()) == len(first) + 1,
        90,
        "the first half committed",
    )
    assert exit_by(good, "sigterm") == "exited (0)"
    at_fault = committed(s3_settings, events_topic, group)
    # 2. a worker meets the faulty store with the second half to write, then ends
    produce(second)
    with store_fault(fault, private_s3) as env:
        faulty = compactor_process(
            *ARGS,
            env=env,
            static=False,
            module="runstream.compactor"
            if how != "crash"
            else "tests.integration.compactor.crashing_compactor",
        )
        time.sleep(12)  # started, joined the group, polled, met the store
        ended = exit_by(faulty, how)
        assert committed(s3_settings, events_topic, group) == at_fault, (
            f"committed what it never wrote ({fault}, {how}: {ended})"
        )
    # 3. a good worker writes the rest: every point once
    compactor_process(*ARGS, env=good_env, static=False)
    helpers.wait_for(
        lambda: duckdb_identities(private_s3.endpoint, root)[0] >= len(truth),
        120,
        f"every point after the fault ({fault}, {how}: {ended})",
        1.0,
    )
    time.sleep(3)  # anything doubled would land by now
    rows, distinct, identities = duckdb_identities(private_s3.endpoint, root)
    assert (rows, distinct) == (len(truth), len(truth)), f"{fault}, {how}: {ended}"
    assert identities == truth
    helpers.wait_for(
        lambda: (
            sum(committed(s3_settings, events_topic, group).values())
            == len(first) + 1 + len(second)
        ),
        60,
        "everything committed at last",
    )
