"""Processor throughput: one faust worker folding a backlog of the event log into the runs
topic (target: >= 200k events/s per worker, DESIGN.md §8), beside the same work done
in-process without faust or Kafka (decode + validate + fold + encode the changed states),
which is the ceiling faust's overhead is measured against.

    .venv/bin/python benchmarks/bench_processor.py [--events 1000000] [--runs 200] [--chunk 1000]
        [--points-per-message 100] [--profile FILE]

The backlog is produced first, then the worker starts; the rate is taken between the first
and the last commit of the worker's consumer group (so start-up and recovery are excluded).
Needs the local stack. Uses fresh topics, deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench_replay import delete_topics, produce_workload, rate, settings_for
from confluent_kafka import Consumer, TopicPartition

from runstream.contract import Codec
from runstream.contract.deadletter import DeadLetter, read_message
from runstream.contract.state import RunState, apply_batch, encode_state
from runstream.core.settings import Settings
from runstream.core.topics import Topics
from runstream.processor.synthetic import workload

ROOT = Path(__file__).parents[1]


def committed(consumer: Consumer, topic: str, partitions: int) -> int:
    """Messages of ``topic`` committed by the consumer's group."""
    offsets = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    return sum(max(tp.offset, 0) for tp in offsets)


def in_process(values: list[bytes], keys: list[bytes], chunk: int) -> float:
    """Seconds to do the worker's work without faust: per chunk of messages, decode and
    validate each, fold it, then encode each changed state once."""
    codec = Codec()
    states: dict[str, RunState] = {}
    started = time.perf_counter()
    for first in range(0, len(values), chunk):
        changed: set[str] = set()
        for offset in range(first, min(first + chunk, len(values))):
            batch = read_message(codec, "t", 0, offset, keys[offset], values[offset])
            if isinstance(batch, DeadLetter):
                raise SystemExit(f"the workload has a bad message: {batch.reason}")
            states[batch.run_id] = apply_batch(states.get(batch.run_id), batch)
            changed.add(batch.run_id)
        for run_id in changed:
            encode_state(codec, states[run_id])
    return time.perf_counter() - started


def run_worker(
    settings: Settings, app_id: str, chunk: int, folder: str, messages: int, profile: str | None
) -> float:
    """Start a worker on the backlog; return the seconds between its first and last commit,
    scaled to the whole backlog."""
    env = {
        **os.environ,
        "RUNSTREAM_TRACKING_URI": str(settings.tracking_uri),
        "RUNSTREAM_TOPIC_PREFIX": settings.topic_prefix,
    }
    topic = Topics(settings.topic_prefix).events
    command = [sys.executable, *(["-m", "cProfile", "-o", profile] if profile else [])]
    command += ["-m", "runstream.processor", "processor", "--app-id", app_id]
    command += ["--data-dir", folder, "--chunk", str(chunk)]
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    consumer = Consumer(settings.kafka_config(**{"group.id": app_id}))
    try:
        first_seen = first_time = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise SystemExit(f"the worker exited with {worker.returncode}")
            done = committed(consumer, topic, 12)
            now = time.perf_counter()
            if done and first_time is None:
                first_seen, first_time = done, now
            if done >= messages and first_time is not None and first_seen is not None:
                if done == first_seen:
                    raise SystemExit("the backlog was done within one commit: raise --events")
                return (now - first_time) * messages / (done - first_seen)
            time.sleep(0.05)
        raise SystemExit("the worker did not finish the backlog in 600 s")
    finally:
        consumer.close()
        worker.terminate()
        worker.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--points-per-message", type=int, default=100)
    parser.add_argument("--kafka", default="127.0.0.1:9092")
    parser.add_argument("--profile", metavar="FILE", help="Run the worker under cProfile.")
    args = parser.parse_args()
    stream = workload(args.runs, args.events, seed=2, points_per_batch=args.points_per_message)
    prefix = f"bench-proc-{uuid.uuid4().hex[:8]}"
    settings = settings_for(prefix, args.kafka)
    app_id = f"{prefix}-processor"
    try:
        values = produce_workload(settings, stream)
        keys = [batch.run_id.encode() for batch in stream.batches]
        alone_s = in_process(values, keys, args.chunk)
        with tempfile.TemporaryDirectory() as folder:
            worker_s = run_worker(settings, app_id, args.chunk, folder, len(values), args.profile)
    finally:
        delete_topics(settings, f"{app_id}-runstate-changelog")
    n = stream.events
    print(
        f"processor on {n:,} events ({len(values):,} messages, {args.runs} runs), chunk {args.chunk}"
    )
    print(f"  one faust worker (commit to commit)   {rate(n, worker_s)}")
    print(f"  same work in-process, no faust/Kafka  {rate(n, alone_s)}")
    print(f"  worker / in-process                    {alone_s / worker_s:5.2f}")


if __name__ == "__main__":
    main()
