"""Replay throughput: fold the event log from Kafka into run states (target: >= 200k events/s,
DESIGN.md §8), beside its parts measured in-process: decoding alone and the reducer alone.

    .venv/bin/python benchmarks/bench_replay.py [--events 1000000] [--runs 200]

Needs the local stack (Kafka on 127.0.0.1:9092). Uses fresh topics, deleted at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import uuid

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient

from runstream.contract import Codec, decode_batch, encode_batch
from runstream.contract.state import fold
from runstream.core.kafka_admin import ensure_topics
from runstream.core.settings import Settings
from runstream.core.topics import Topics
from runstream.processor.replay import replay
from runstream.processor.synthetic import Workload, workload

TARGET = 200_000


def settings_for(prefix: str, kafka: str = "127.0.0.1:9092") -> Settings:
    """Settings of a benchmark run under its own topic prefix."""
    return Settings.resolve(f"kafka://{kafka}", topic_prefix=prefix, environ={})


def produce_workload(settings: Settings, stream: Workload) -> list[bytes]:
    """Create the topics and send every batch of ``stream``; return the encoded values."""
    ensure_topics(settings)
    codec = Codec()
    values = [encode_batch(codec, batch) for batch in stream.batches]
    producer = Producer(settings.kafka_config(**{"linger.ms": 50, "batch.size": 1_000_000}))
    topic = Topics(settings.topic_prefix).events
    for batch, value in zip(stream.batches, values, strict=True):
        producer.produce(topic, value, batch.run_id.encode())
        producer.poll(0)
    if producer.flush(120):
        raise SystemExit("the broker did not acknowledge every message")
    return values


def delete_topics(settings: Settings, *extra: str) -> None:
    """Remove the benchmark's topics."""
    admin = AdminClient(settings.kafka_config())
    names = [*Topics(settings.topic_prefix).configs(), *extra]
    for future in admin.delete_topics(names).values():
        with contextlib.suppress(KafkaException):  # a topic that was never created
            future.result(30)


def rate(count: int, seconds: float) -> str:
    """``count / seconds`` as events/s, and against the target."""
    per_second = count / seconds
    return f"{per_second:>12,.0f} events/s  ({per_second / TARGET:5.2f}x the {TARGET:,} target)"


def in_process(stream: Workload, values: list[bytes]) -> tuple[float, float]:
    """Seconds to decode every message, and to fold the decoded batches."""
    codec = Codec()
    started = time.perf_counter()
    batches = [decode_batch(codec, value) for value in values]
    decoded = time.perf_counter()
    fold(batches)
    return decoded - started, time.perf_counter() - decoded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--kafka", default="127.0.0.1:9092")
    args = parser.parse_args()
    stream = workload(args.runs, args.events, seed=1)
    settings = settings_for(f"bench-replay-{uuid.uuid4().hex[:8]}", args.kafka)
    try:
        values = produce_workload(settings, stream)
        decode_s, fold_s = in_process(stream, values)
        started = time.perf_counter()
        result = replay(settings)
        replay_s = time.perf_counter() - started
    finally:
        delete_topics(settings)
    assert result.events == stream.events, (result.events, stream.events)
    n = stream.events
    print(f"replay of {n:,} events ({len(values):,} messages, {args.runs} runs) from Kafka")
    print(f"  replay (read + decode + fold)  {rate(n, replay_s)}")
    print(f"  decode only, in memory         {rate(n, decode_s)}")
    print(f"  fold only, in memory           {rate(n, fold_s)}")
    print(f"  replay / (decode + fold)       {(decode_s + fold_s) / replay_s:5.2f}")


if __name__ == "__main__":
    main()
