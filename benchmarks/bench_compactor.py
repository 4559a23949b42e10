"""Compactor throughput: points/s from Kafka into Parquet on the S3 server.

Produces N metric points (default 1,000,000) of a few runs to a fresh topic, then times one
compactor worker reading them from the beginning until every point is in the store. The
peer is the same worker's floor: reading and decoding the same messages without writing
anything (``read_topic`` + ``decode_batch``). Target (DESIGN.md section 8): >= 500k points/s.

    .venv/bin/python benchmarks/bench_compactor.py [--points 1000000]

Needs the local stack (deploy/stack up) and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
(defaults: runstream / runstream-secret).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import threading
import time
import uuid

from confluent_kafka import Producer as KafkaProducer

from compactor import BufferPolicy, Compactor, CompactorConfig, Snapshots, Store
from compactor.buffer import PointChunk, chunk_of
from compactor.identities import SeenIndex
from compactor.parquet import encode, points_table
from runstream.filesystem import open_store
from runstream.kafka_admin import ensure_topics
from runstream.settings import Settings
from runstream.source import KafkaSource, read_topic
from schemas import (
    Codec,
    Event,
    EventBatch,
    MetricColumns,
    Producer,
    RunEnded,
    decode_batch,
    encode_batch,
)

TARGET = 500_000


def batches(points: int, runs: int = 4, keys: int = 4, steps: int = 1000) -> list[EventBatch]:
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
    return [c for i, b in enumerate(work) if (c := chunk_of(b, 0, i, seen)) is not None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--profile", metavar="FILE", help="Profile the worker loop (cProfile).")
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
    codec = Codec()
    work = batches(args.points)
    total = sum(len(b.metrics) for b in work)
    producer = KafkaProducer(settings.kafka_config(**{"linger.ms": 20, "compression.type": "lz4"}))
    for batch in work:
        producer.produce(topic, encode_batch(codec, batch), batch.run_id.encode())
        producer.poll(0)
    assert producer.flush(60) == 0
    print(f"produced {total:,} points in {len(work)} messages to {topic}")

    started = time.perf_counter()
    decoded = sum(len(decode_batch(codec, r.value).metrics) for r in read_topic(settings, topic))
    peer_s = time.perf_counter() - started
    assert decoded == total

    warm_up_pyarrow()
    fs, root = open_store(settings)
    stop = threading.Event()
    store = Store(fs, root, stop=stop)
    source = KafkaSource(settings, topic, f"{prefix}-compactor")
    worker = Compactor(
        source,
        store,
        codec,
        CompactorConfig(policy=BufferPolicy(), poll_records=1000),
        snapshots=Snapshots(store, codec),
        stop=stop,
    )
    profiler = cProfile.Profile() if args.profile else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    while worker.stats.points < total:
        worker.step()
    worker.drain()  # every file written and committed
    compactor_s = time.perf_counter() - started
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    assert not worker.pending
    worker.close()
    source.close()
    rate, peer_rate = total / compactor_s, total / peer_s
    print(
        f"compactor: {rate:,.0f} points/s ({compactor_s:.2f}s, {worker.stats.files} files, {worker.stats.merges} merges)"
    )
    print(f"peer (read + decode only, no Parquet, no S3): {peer_rate:,.0f} points/s")
    print(f"ratio compactor / peer: {rate / peer_rate:.2f}")
    print(f"ratio compactor / target {TARGET:,}: {rate / TARGET:.2f}")
    fs.rm(root, recursive=True)


if __name__ == "__main__":
    main()
