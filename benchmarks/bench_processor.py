"""Processor throughput: one faust worker folding a backlog of the event log into the runs
topic (target: >= 300k events/s per worker, DESIGN.md §8), beside the same work done
in-process without faust or Kafka (decode + validate + fold + encode the changed states,
chunk by chunk), which is the ceiling faust's overhead is measured against.

    .venv/bin/python benchmarks/bench_processor.py [--events 1000000] [--runs 200]
        [--chunk N] [--points-per-message 100] [--rounds 3] [--profile FILE]

The backlog is produced once; each round then runs the in-process peer and a new worker (a
new consumer group and table) on it. A worker's rate is taken between the first and the last
commit of its group (start-up and recovery excluded), in wall time and in the CPU time the
worker process used meanwhile (read from /proc: on a shared, loaded machine the CPU rate is
the steadier figure; on an idle one both agree). Medians and spread over the rounds are
printed, with the load average. Needs the local stack. Uses fresh topics, deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench_replay import delete_topics, produce_workload, settings_for
from confluent_kafka import Consumer, TopicPartition

from runstream.contract import Codec
from runstream.contract.deadletter import DeadLetter, read_message
from runstream.contract.state import RunState, apply_batch, encode_state
from runstream.core.settings import Settings
from runstream.core.topics import Topics
from runstream.processor.app import ProcessorOptions
from runstream.processor.synthetic import workload

ROOT = Path(__file__).parents[1]
TARGET = 300_000
_TICK = os.sysconf("SC_CLK_TCK")


def committed(consumer: Consumer, topic: str, partitions: int) -> int:
    """Messages of ``topic`` committed by the consumer's group."""
    offsets = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    return sum(max(tp.offset, 0) for tp in offsets)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def in_process(values: list[bytes], keys: list[bytes], chunk: int) -> tuple[float, float]:
    """(wall, CPU) seconds to do the worker's work without faust: per chunk of messages,
    decode and validate each, fold it, then encode each changed state once."""
    codec = Codec()
    states: dict[str, RunState] = {}
    started, started_cpu = time.perf_counter(), time.process_time()
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
    return time.perf_counter() - started, time.process_time() - started_cpu


def run_worker(
    settings: Settings,
    app_id: str,
    chunk: int | None,
    folder: str,
    messages: int,
    profile: str | None,
) -> tuple[float, float]:
    """Start a worker on the backlog; return the (wall, CPU) seconds between its first and
    last commit, scaled to the whole backlog."""
    env = {
        **os.environ,
        "RUNSTREAM_TRACKING_URI": str(settings.tracking_uri),
        "RUNSTREAM_TOPIC_PREFIX": settings.topic_prefix,
    }
    topic = Topics(settings.topic_prefix).events
    command = [sys.executable, *(["-m", "cProfile", "-o", profile] if profile else [])]
    command += ["-m", "runstream.processor", "processor", "--app-id", app_id]
    command += ["--data-dir", folder, *(["--chunk", str(chunk)] if chunk else [])]
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    consumer = Consumer(settings.kafka_config(**{"group.id": app_id}))
    try:
        first_seen = first_time = first_cpu = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise SystemExit(f"the worker exited with {worker.returncode}")
            done = committed(consumer, topic, 12)
            now, cpu = time.perf_counter(), cpu_seconds(worker.pid)
            if done and first_time is None:
                first_seen, first_time, first_cpu = done, now, cpu
            if done >= messages and first_seen is not None:
                if done == first_seen:
                    raise SystemExit("the backlog was done within one commit: raise --events")
                assert first_time is not None and first_cpu is not None
                scale = messages / (done - first_seen)
                return (now - first_time) * scale, (cpu - first_cpu) * scale
            time.sleep(0.05)
        raise SystemExit("the worker did not finish the backlog in 600 s")
    finally:
        consumer.close()
        worker.terminate()
        worker.wait(60)


def rate(count: int, seconds: float) -> str:
    """``count / seconds`` as events/s, and against the target."""
    per_second = count / seconds
    return f"{per_second:>10,.0f}/s ({per_second / TARGET:4.2f}x)"


def summary(count: int, seconds: list[float]) -> str:
    """The median rate over the rounds, and the spread (slowest to fastest)."""
    rates = sorted(count / s for s in seconds)
    return (
        f"{statistics.median(rates):>10,.0f}/s ({statistics.median(rates) / TARGET:4.2f}x)"
        f"  spread {rates[0]:,.0f} to {rates[-1]:,.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--chunk", type=int, help="The worker's --chunk (default: its own).")
    parser.add_argument("--points-per-message", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kafka", default="127.0.0.1:9092")
    parser.add_argument("--profile", metavar="FILE", help="Run the worker under cProfile.")
    args = parser.parse_args()
    chunk = args.chunk or ProcessorOptions().chunk
    stream = workload(args.runs, args.events, seed=2, points_per_batch=args.points_per_message)
    prefix = f"bench-proc-{uuid.uuid4().hex[:8]}"
    settings = settings_for(prefix, args.kafka)
    app_ids = [f"{prefix}-processor-{round_}" for round_ in range(args.rounds)]
    n = stream.events
    alone: list[tuple[float, float]] = []
    workers: list[tuple[float, float]] = []
    load = os.getloadavg()[0]
    try:
        values = produce_workload(settings, stream)
        keys = [batch.run_id.encode() for batch in stream.batches]
        print(
            f"processor on {n:,} events ({len(values):,} messages, {args.runs} runs), chunk "
            f"{chunk}; target {TARGET:,} events/s; rates as wall | worker CPU"
        )
        for round_, app_id in enumerate(app_ids):
            alone.append(in_process(values, keys, chunk))
            with tempfile.TemporaryDirectory() as folder:
                workers.append(
                    run_worker(settings, app_id, args.chunk, folder, len(values), args.profile)
                )
            (alone_s, alone_cpu), (worker_s, worker_cpu) = alone[-1], workers[-1]
            print(
                f"  round {round_ + 1}: worker {rate(n, worker_s)} | {rate(n, worker_cpu)}"
                f"   in-process {rate(n, alone_s)} | {rate(n, alone_cpu)}"
                f"   load {os.getloadavg()[0]:.1f}"
            )
    finally:
        delete_topics(settings, *(f"{app_id}-runstate-changelog" for app_id in app_ids))
    ratios = sorted(a[1] / w[1] for a, w in zip(alone, workers, strict=False))
    print(f"medians over {len(workers)} rounds (load average {load:.1f} at the start):")
    print(f"  one faust worker, wall                {summary(n, [w[0] for w in workers])}")
    print(f"  one faust worker, per CPU second      {summary(n, [w[1] for w in workers])}")
    print(f"  same work in-process, wall            {summary(n, [a[0] for a in alone])}")
    print(f"  same work in-process, per CPU second  {summary(n, [a[1] for a in alone])}")
    print(
        f"  worker / in-process (CPU)             {statistics.median(ratios):5.2f}"
        f"  spread {ratios[0]:.2f} to {ratios[-1]:.2f}"
    )


if __name__ == "__main__":
    main()
