"""Faults: the S3 server stopped mid-stream; the compactor SIGKILLed at random moments."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from dataclasses import replace

import pytest
from confluent_kafka import Consumer, TopicPartition

from runstream.compactor import BufferPolicy
from runstream.contract.layout import parse_part_name

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def committed(settings, topic: str, group: str, partitions: int) -> dict[int, int]:
    consumer = Consumer(settings.kafka_config(**{"group.id": group}))
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in tps if tp.offset >= 0}
    finally:
        consumer.close()


@pytest.mark.parametrize("uploads", [False, True], ids=["PUTs in the worker", "PUTs in helpers"])
def test_s3_down_for_20s_retries_commits_nothing_unwritten_then_everything_arrives(
    helpers, produce, start_worker, s3_settings, private_s3, events_topic, unique, uploads
):
    store = replace(s3_settings, s3_endpoint=private_s3.endpoint)
    keys = ["loss", "acc"]
    first = [
        helpers.metric_batch(f"r{r}", f"p{r}", i * 1000, keys, i * 500, 500)
        for r in range(3)
        for i in range(10)
    ]
    second = [
        helpers.metric_batch(f"r{r}", f"p{r}", 10_000 + i * 1000, keys, 5000 + i * 500, 500, i == 9)
        for r in range(3)
        for i in range(10)
    ]
    truth = helpers.truth_of(first + second)
    worker = start_worker(
        store,
        policy=BufferPolicy(max_points=4000, rotate_interval_s=2.0),
        uploads=uploads,
        commit_interval_s=0.2,
    )
    produce(first)
    helpers.wait_for(
        lambda: len(helpers.store_points(store)) == len(helpers.truth_of(first)),
        60,
        "first half written",
    )
    time.sleep(1)
    private_s3.stop()
    produce(second)
    group = f"{unique}-compactor"
    time.sleep(3)
    at_stop = committed(s3_settings, events_topic, group, 4)
    time.sleep(17)
    assert committed(s3_settings, events_topic, group, 4) == at_stop, "committed while S3 was down"
    assert worker.thread.is_alive()
    private_s3.start()
    helpers.wait_for(
        lambda: len(helpers.store_points(store)) >= len(truth), 90, "everything after S3 is back"
    )
    time.sleep(2)
    points = helpers.store_points(store)
    assert [i for i, n in Counter(i for i, _ in points).items() if n > 1] == []
    assert dict(points) == truth
    # everything written is committed in the end, nothing more
    helpers.wait_for(
        lambda: sum(committed(s3_settings, events_topic, group, 4).values()) == 60,
        30,
        "final commit",
    )


def test_sigkill_at_five_random_moments_loses_and_doubles_nothing(
    helpers, produce, compactor_process, s3_settings
):
    random.seed()
    runs, steps_per_batch, batches_per_run, keys = 4, 1000, 125, ["loss", "acc"]
    batches = []
    for i in range(batches_per_run):
        for r in range(runs):
            batches.append(
                helpers.metric_batch(
                    f"k{r}",
                    f"p{r}",
                    i * steps_per_batch * 2,
                    keys,
                    i * steps_per_batch,
                    steps_per_batch,
                    i == batches_per_run - 1,
                )
            )
    truth = helpers.truth_of(batches)  # 4 runs x 2 keys x 125k = 1M points
    process = compactor_process("--max-points", "5000", "--rotate-interval", "1")
    chunks = [batches[i::5] for i in range(5)]
    kills = []
    for chunk in chunks:
        produce(chunk)
        time.sleep(random.uniform(0.5, 4.0))
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        kills.append(len(helpers.store_points(s3_settings)))
        process = compactor_process("--max-points", "5000", "--rotate-interval", "1")
    helpers.wait_for(
        lambda: len(helpers.store_points(s3_settings)) >= len(truth),
        180,
        "every point after the kills",
        1.0,
    )
    time.sleep(3)
    points = helpers.store_points(s3_settings)
    print(f"points in Parquet at each kill: {kills}; total {len(points)} of {len(truth)}")
    assert [
        i for i, n in Counter(i for i, _ in points).items() if n > 1
    ] == []  # no row in two files
    assert dict(points) == truth
    for _, path, _ in helpers.store_rows(s3_settings):
        assert parse_part_name(path) is not None
