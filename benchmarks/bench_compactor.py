"""Compactor throughput: points/s from Kafka into Parquet on the S3 server.

Produces N metric points (default 1,000,000) of 4 runs (each ends with the stream, so 4
merges) to a fresh topic, then times one compactor worker reading them from the beginning
until every point is written and committed (and checks the store holds each point once).
The time of a round includes the worker joining its fresh consumer group (about 0.2 s here).
Peers, measured in the same round: reading the topic (``read_topic``: the Kafka floor), and
reading + decoding it with the reference ``decode_batch``. Medians of ``--repeat`` rounds,
after ``--warmup`` untimed ones.
Target (DESIGN.md section 8): >= 500k points/s.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_compactor.py [--points 1000000] [--repeat 5]
        [--warmup 1]

Needs the local stack (deploy/stack up) and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
(defaults: runstream / runstream-secret).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import resource
import statistics
import threading
import time
import uuid

import pyarrow.parquet as pq
from confluent_kafka import KafkaException
from confluent_kafka import Producer as KafkaProducer
from confluent_kafka.admin import AdminClient

from runstream.compactor import BufferPolicy, Compactor, CompactorConfig, Snapshots, Store
from runstream.compactor.buffer import chunk_of
from runstream.compactor.identities import SeenIndex
from runstream.compactor.uploads import UploadProcesses
from runstream.contract import (
    Codec,
    Event,
    EventBatch,
    MetricColumns,
    Producer,
    RunEnded,
    decode_batch,
    encode_batch,
)
from runstream.contract.columns import MetricArrays
from runstream.contract.layout import live_files
from runstream.contract.parquet import PointChunk, encode, points_table
from runstream.core.filesystem import open_store
from runstream.core.kafka_admin import ensure_topics
from runstream.core.settings import Settings
from runstream.core.source import KafkaSource, read_topic
from runstream.core.topics import Topics

TARGET = 500_000
RUNS = 4


def batches(points: int, runs: int = RUNS, keys: int = 4, steps: int = 1000) -> list[EventBatch]:
    per_run = points // runs
    out = []
    for run in range(runs):
        sequence = 0
        for start in range(0, per_run // keys, steps):
            count = min(steps, per_run // keys - start)
            columns = MetricColumns(
                keys=[f"metric{k}" for k in range(keys)],
                key_index=[k for _ in range(count) for k in range(keys)],
                steps=[s for s in range(start, start + count) for _ in range(keys)],
                values=[s * 0.001 + k for s in range(start, start + count) for k in range(keys)],
                timestamps=[
                    1_700_000_000_000 + s for s in range(start, start + count) for _ in range(keys)
                ],
            )
            last = start + count >= per_run // keys
            events = (Event(1, RunEnded("FINISHED", 1)),) if last else ()
            out.append(
                EventBatch(f"bench{run}", Producer(f"p{run}", "h", 1), sequence, events, columns)
            )
            sequence += len(columns) + len(events)
    return out


def warm_up_pyarrow() -> None:
    """Pay pyarrow's one-time lazy imports (its first compute call imports pandas, ~0.3 s)
    before the clock starts: the figure is a steady-state rate."""
    encode(points_table(chunks_of(batches(8, runs=1, keys=2, steps=4))))


def chunks_of(work: list[EventBatch]) -> list[PointChunk]:
    seen = SeenIndex()
    return [
        c
        for i, b in enumerate(work)
        if (c := chunk_of(b, MetricArrays.of(b.metrics), 0, i, seen)) is not None
    ]


def compact(
    settings: Settings,
    topic: str,
    run: str,
    total: int,
    profile: str | None,
    uploads: UploadProcesses | None,
) -> tuple[float, float, int, int]:
    """One worker (fresh group, fresh store prefix) from the topic's start until every
    point is written and committed: (seconds, CPU seconds of the process, files, merges).
    Checks the store holds every point once, then removes it."""
    fs, root = open_store(settings)
    root = f"{root}/{run}"
    stop = threading.Event()
    store = Store(fs, root, stop=stop, uploads=uploads)
    codec = Codec()
    source = KafkaSource(settings, topic, f"{settings.topic_prefix}-{run}")
    worker = Compactor(
        source,
        store,
        codec,
        CompactorConfig(policy=BufferPolicy(), poll_records=1000),
        snapshots=Snapshots(store, codec),
        stop=stop,
    )
    profiler = cProfile.Profile() if profile else None
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    while worker.stats.points < total:
        worker.step()
    worker.drain()  # every file written, and its offsets committed
    seconds = time.perf_counter() - started
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = used.ru_utime - cpu.ru_utime + used.ru_stime - cpu.ru_stime
    if profiler is not None and profile is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    assert not worker.pending
    worker.close()
    source.close()
    rows = 0
    for run_id in (f"bench{r}" for r in range(RUNS)):
        for path in live_files(store.list_run(run_id)):
            with fs.open(path, "rb") as file:
                rows += pq.ParquetFile(file).metadata.num_rows
    assert rows == total, f"the store holds {rows:,} rows, not {total:,}"
    fs.rm(root, recursive=True)
    return seconds, cpu_s, worker.stats.files, worker.stats.merges


def peers(settings: Settings, topic: str, total: int) -> tuple[float, float]:
    """Seconds to read the topic (Kafka floor), and to read + decode_batch it."""
    codec = Codec()
    started = time.perf_counter()
    assert sum(1 for _ in read_topic(settings, topic)) > 0
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    decoded = sum(len(decode_batch(codec, r.value).metrics) for r in read_topic(settings, topic))
    decode_s = time.perf_counter() - started
    assert decoded == total
    return read_s, decode_s


def delete_topics(settings: Settings) -> None:
    """Remove the benchmark's topics."""
    admin = AdminClient(settings.kafka_config())
    for future in admin.delete_topics(list(Topics(settings.topic_prefix).configs())).values():
        with contextlib.suppress(KafkaException):  # a topic that was never created
            future.result(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="Rounds; medians are reported.")
    parser.add_argument(
        "--upload-processes",
        type=int,
        default=2,
        help="Helper processes making the PUTs, as `runstream compactor` (its default: 2; "
        "0: from the worker's threads). Started once, before the rounds.",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="Untimed rounds first: the process's one-time costs (first S3 and Kafka "
        "connections, credential lookup, lazy imports) are not a rate. Every timed round "
        "still starts a fresh worker that joins a fresh consumer group.",
    )
    parser.add_argument("--profile", metavar="FILE", help="Profile the last round (cProfile).")
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "runstream")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "runstream-secret")
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    settings = Settings.resolve(
        "kafka://127.0.0.1:9092",
        f"s3://runstream/{prefix}",
        s3_endpoint="http://127.0.0.1:8333",
        topic_prefix=prefix,
        environ={},
    )
    topic = ensure_topics(settings, partitions=4).events
    uploads: UploadProcesses | None = None
    try:
        codec = Codec()
        work = batches(args.points)
        total = sum(len(b.metrics) for b in work)
        producer = KafkaProducer(
            settings.kafka_config(**{"linger.ms": 20, "compression.type": "lz4"})
        )
        for batch in work:
            producer.produce(topic, encode_batch(codec, batch), batch.run_id.encode())
            producer.poll(0)
        assert producer.flush(60) == 0
        print(f"produced {total:,} points in {len(work)} messages to {topic}")
        warm_up_pyarrow()
        if args.upload_processes:
            uploads = UploadProcesses(settings, args.upload_processes)
        print(f"upload processes: {args.upload_processes}")
        for i in range(args.warmup):
            seconds, _, _, _ = compact(settings, topic, f"warmup{i}", total, None, uploads)
            print(f"warm-up round {i}: {total / seconds:,.0f} points/s (not counted)")
        rounds = []
        for i in range(args.repeat):
            read_s, decode_s = peers(settings, topic, total)
            last = i == args.repeat - 1
            seconds, cpu_s, files, merges = compact(
                settings, topic, f"round{i}", total, args.profile if last else None, uploads
            )
            rounds.append((seconds, read_s, decode_s))
            print(
                f"round {i}: compactor {total / seconds:>10,.0f} points/s ({seconds:.2f}s, "
                f"{files} files, {merges} merges, {cpu_s / total * 1e6:.2f} CPU-µs/point); "
                f"read {total / read_s:,.0f}/s; "
                f"read+decode_batch {total / decode_s:,.0f}/s"
            )
    finally:
        delete_topics(settings)
        if uploads is not None:
            uploads.close()
    seconds, read_s, decode_s = (statistics.median(r[i] for r in rounds) for i in range(3))
    rate = total / seconds
    print(f"compactor (median of {len(rounds)}): {rate:,.0f} points/s into Parquet on S3")
    print(f"ratio compactor / read only (Kafka floor, same run): {read_s / seconds:.2f}")
    print(f"ratio compactor / read + decode_batch (same run): {decode_s / seconds:.2f}")
    print(f"ratio compactor / target {TARGET:,}: {rate / TARGET:.2f}")


if __name__ == "__main__":
    main()
