"""The processor on the local stack: the runs topic equals the reducer over the ground
truth, through duplicates, shuffled event times, SIGKILL, a worker leaving, and bad data."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from runstream.contract import Codec, EventBatch, encode_batch
from runstream.contract.deadletter import OFFSET, PARTITION, REASON, TOPIC
from runstream.contract.state import decode_state, encode_state
from runstream.core.settings import Settings
from runstream.core.source import read_topic
from runstream.core.topics import Topics
from runstream.processor.replay import live_states
from runstream.processor.synthetic import workload

pytestmark = pytest.mark.integration


def wait_for_progress(settings: Settings, at_least: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(v is not None for v in live_states(settings).values()) >= at_least:
            return
        time.sleep(1)
    pytest.fail(f"the worker published fewer than {at_least} runs in {timeout} s")


Send = Callable[[Iterable[Any]], int]
Wait = Callable[[list[EventBatch]], dict[str, bytes]]
Worker = Callable[..., subprocess.Popen[bytes]]
Replay = Callable[..., subprocess.CompletedProcess[str]]


def test_100k_events_over_200_runs_equal_the_reducer_and_replay_verifies(
    kafka_settings: Settings,
    topics: Topics,
    start_worker: Worker,
    send: Send,
    runs_equal_reducer: Wait,
    replay_cli: Replay,
) -> None:
    stream = workload(200, 100_000, seed=11)
    assert stream.events > stream.unique_events  # duplicates were sent
    send(stream.batches)
    start_worker("w1")
    live = runs_equal_reducer(stream.batches)
    assert len(live) < 200  # some runs were deleted: tombstones

    verified = replay_cli("--verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "equals the replay" in verified.stdout

    run_id = sorted(live)[0]
    corrupt = decode_state(Codec(), live[run_id])
    corrupt.params.pop("lr")
    producer = Producer(kafka_settings.kafka_config())
    partition = next(
        r.partition for r in read_topic(kafka_settings, topics.runs) if r.key == run_id.encode()
    )
    producer.produce(topics.runs, encode_state(Codec(), corrupt), run_id.encode(), partition)
    assert producer.flush(30) == 0
    failed = replay_cli("--verify")
    assert failed.returncode != 0
    assert f"differs {run_id} params" in failed.stdout

    rebuilt = f"{topics.runs}.rebuilt"
    done = replay_cli("--rebuild", rebuilt)
    assert done.returncode == 0, done.stdout + done.stderr
    rebuilt_states = {k: v for k, v in live_states(kafka_settings, rebuilt).items() if v}
    assert rebuilt_states == {**live, run_id: rebuilt_states[run_id]}
    assert rebuilt_states[run_id] != encode_state(Codec(), corrupt)


def test_a_worker_killed_mid_stream_and_restarted_gives_the_same_state(
    kafka_settings: Settings,
    topics: Topics,
    start_worker: Worker,
    send: Send,
    runs_equal_reducer: Wait,
) -> None:
    stream = workload(60, 30_000, seed=12)
    third = len(stream.batches) // 3
    send(stream.batches[: 2 * third])
    backlogs = []
    for round_ in range(2):  # small chunks, so that a kill lands mid-stream
        worker = start_worker("w1", "--chunk", "5", "--within", "0.05", "--session-timeout", "10")
        wait_for_progress(kafka_settings, 10 * (round_ + 1))
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(30) == -signal.SIGKILL
        backlogs.append(
            backlog(kafka_settings, topics.events, f"{kafka_settings.topic_prefix}-processor")
        )
        send(stream.batches[2 * third :] if round_ == 0 else [])
    assert any(backlogs), "every kill came after the whole stream was processed"
    start_worker(
        "w1", "--session-timeout", "10"
    )  # same data folder: RocksDB recovers from its files and the changelog
    runs_equal_reducer(stream.batches)


def backlog(settings: Settings, topic: str, group: str) -> int:
    """Messages of ``topic`` not yet committed by ``group``."""
    consumer = Consumer(settings.kafka_config(**{"group.id": group}))
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return sum(
            consumer.get_watermark_offsets(tp, 10)[1] - max(tp.offset, 0) for tp in committed
        )
    finally:
        consumer.close()


def test_two_workers_in_one_group_one_stopped_halfway_give_the_same_state(
    kafka_settings: Settings,
    topics: Topics,
    start_worker: Worker,
    send: Send,
    runs_equal_reducer: Wait,
    replay_cli: Replay,
) -> None:
    stream = workload(60, 30_000, seed=13)
    half = len(stream.batches) // 2
    first, second = start_worker("w1"), start_worker("w2")
    send(stream.batches[:half])
    wait_for_progress(kafka_settings, 10)
    second.send_signal(signal.SIGTERM)
    assert second.wait(60) is not None
    send(stream.batches[half:])
    runs_equal_reducer(stream.batches)
    assert first.poll() is None


def test_bad_messages_go_to_the_dead_letter_topic_and_valid_ones_are_applied(
    kafka_settings: Settings,
    topics: Topics,
    start_worker: Worker,
    send: Send,
    runs_equal_reducer: Wait,
    replay_cli: Replay,
) -> None:
    stream = workload(5, 1_000, seed=14, duplicate_share=0.0)
    valid = stream.batches
    first = encode_batch(Codec(), valid[0])
    key = valid[0].run_id.encode()
    bad: list[tuple[bytes | None, bytes]] = [
        (key, b"garbage bytes, not avro"),
        (key, first[: len(first) // 2]),
        (key, b"\xc3\x01" + b"\x00" * 8 + first[10:]),
    ]
    items: list[EventBatch | tuple[bytes | None, bytes]] = [valid[0], *bad[:1], *valid[1:3]]
    items += [bad[1], *valid[3:6], bad[2], *valid[6:]]
    send(items)
    start_worker("w1")
    runs_equal_reducer(valid)

    reasons = {}
    for value, headers in _dead_letters(kafka_settings, topics.dead_letters):
        assert headers[TOPIC] == topics.events.encode()
        partition, offset = int(headers[PARTITION]), int(headers[OFFSET])
        source = _message_at(kafka_settings, topics.events, partition, offset)
        assert source == value
        reasons[value] = headers[REASON].decode()
    assert reasons == {bad[0][1]: "framing", bad[1][1]: "truncated", bad[2][1]: "fingerprint"}


def _dead_letters(settings: Settings, topic: str) -> list[tuple[bytes, dict[str, bytes]]]:
    """Value and headers of every record of ``topic``."""
    found = []
    consumer = Consumer(settings.kafka_config(**{"group.id": "dlq-reader"}))
    try:
        for partition in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
            consumer.assign([TopicPartition(topic, partition, low)])
            for _ in range(high - low):
                message = consumer.poll(10)
                assert message is not None and message.error() is None
                found.append((message.value(), dict(message.headers() or [])))
    finally:
        consumer.close()
    return found


def _message_at(settings: Settings, topic: str, partition: int, offset: int) -> bytes:
    consumer = Consumer(settings.kafka_config(**{"group.id": "dlq-source"}))
    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        message = consumer.poll(10)
        assert message is not None and message.error() is None
        assert message.offset() == offset
        value: bytes = message.value()
        return value
    finally:
        consumer.close()
