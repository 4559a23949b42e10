"""The query's first history call in a new process, over event logs of growing size (Kafka +
S3, the local stack), with the tail starting where the compactor committed, side by side with
the old whole-log fold.

    .venv/bin/python benchmarks/bench_tail.py [--sizes 1000000,5000000,10000000] [--repeat 3]

For each size, a fresh topic prefix gets that many metric points (20 runs, batches of 1,000
points, a RunStarted/params/RunEnded per run) and the real compactor (its group, snapshots on)
compacts all of it. Then, each in a new process: ``QueryEngine.from_settings`` and one
``get_metric_history`` of a 1,000-point run (the target: flat across log sizes), printed as a
ratio to the smallest log. The old path (the tail from offset 0, ``tail_start=None``) runs on the
smallest log only (it grows with the log: 17 s and 4 GB at 10M, issue 18).

Then a cold history of one run of --tail-points points that is still wholly in the tail (no
compaction), in a new process: the new tail (column decode) against the old tail's class as it
was before this change (git revision --old-rev, written to a temporary file; slow-path decode),
same log, same process kind. Memory: the
peak RSS growth of the process during the call (VmHWM after minus VmRSS before).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer as KafkaProducer

from runstream.compactor import BufferPolicy, Compactor, CompactorConfig, Store
from runstream.compactor.snapshots import Snapshots
from runstream.contract import (
    Codec,
    Event,
    EventBatch,
    MetricColumns,
    ParamLogged,
    Producer,
    RunEnded,
    RunStarted,
    encode_batch,
)
from runstream.core.filesystem import open_store
from runstream.core.kafka_admin import ensure_topics
from runstream.core.settings import Settings
from runstream.core.source import KafkaSource

T0 = 1_700_000_000_000_000
RUNS = 20
BATCH = 1_000


def settings_for(prefix: str) -> Settings:
    return Settings.resolve(
        f"kafka://{os.environ.get('RUNSTREAM_TEST_KAFKA', '127.0.0.1:9092')}",
        f"s3://{os.environ.get('RUNSTREAM_S3_BUCKET', 'runstream')}/{prefix}",
        s3_endpoint=os.environ.get("RUNSTREAM_S3_ENDPOINT", "http://127.0.0.1:8333"),
        topic_prefix=prefix,
        environ={},
    )


def produce(settings: Settings, runs: dict[str, int]) -> None:
    """Each run of ``runs`` (id -> points): started, a param, its points, ended."""
    topics = ensure_topics(settings)
    codec = Codec()
    producer = KafkaProducer(
        settings.kafka_config(acks="all", **{"linger.ms": 20, "message.max.bytes": 10_000_000})
    )

    def send(batch: EventBatch) -> None:
        while True:
            try:
                producer.produce(topics.events, encode_batch(codec, batch), key=batch.run_id)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)

    for run_id, points in runs.items():
        who = Producer(uuid.uuid4().hex, "bench", 1)
        start = RunStarted(start_time_us=T0, name=run_id, collection="bench", tags={})
        send(EventBatch(run_id, who, 0, (Event(T0, start), Event(T0, ParamLogged("lr", "1")))))
        sequence = 2
        for first in range(0, points, BATCH):
            n = min(BATCH, points - first)
            steps = list(range(first, first + n))
            columns = MetricColumns(
                ["loss"], [0] * n, steps, [s * 1e-6 for s in steps], [T0 // 1000 + s for s in steps]
            )
            send(EventBatch(run_id, who, sequence, (), columns))
            sequence += n
        send(EventBatch(run_id, who, sequence, (Event(T0 + 1, RunEnded("FINISHED", T0 + 1)),)))
    assert producer.flush(120) == 0


def compact(settings: Settings) -> None:
    """The real compactor in its group, with snapshots, until it has read and written all."""
    topics = ensure_topics(settings)
    fs, root = open_store(settings)
    store = Store(fs, root)
    source = KafkaSource(settings, topics.events, topics.compactor_group)
    config = CompactorConfig(policy=BufferPolicy(max_points=100_000, rotate_interval_s=3600))
    worker = Compactor(source, store, Codec(), config, snapshots=Snapshots(store, Codec()))
    try:
        idle = 0
        while idle < 50:
            idle = idle + 1 if worker.step() == 0 else 0
        worker.flush(force=True)
    finally:
        worker.close()
        source.close()


def child(args: argparse.Namespace) -> None:
    """One measured call in this (new) process; prints JSON."""
    from runstream.query import QueryEngine
    from runstream.query.tail import event_log

    settings = settings_for(args.prefix)
    open_store(settings)  # imports (s3fs, botocore) warmed: what is timed is the query's work
    rss_before = _status("VmRSS")
    started = time.perf_counter()
    if args.mode == "new":
        engine = QueryEngine.from_settings(settings)
        rows = engine.get_metric_history(args.run, "loss").num_rows
    elif args.mode == "whole":
        fs, root = open_store(settings)
        engine = QueryEngine(event_log(settings), fs, root)
        rows = engine.get_metric_history(args.run, "loss").num_rows
    else:  # the old Tail class, from main's source, over the same log
        import importlib.util

        spec = importlib.util.spec_from_file_location("old_tail", args.old_tail)
        assert spec is not None and spec.loader is not None
        old = importlib.util.module_from_spec(spec)
        sys.modules["old_tail"] = old  # dataclasses look their module up
        spec.loader.exec_module(old)
        tail = old.Tail(event_log(settings))
        tail.refresh()
        rows = tail.points(args.run, {}).num_rows
    elapsed = time.perf_counter() - started
    print(json.dumps({"s": elapsed, "rows": rows, "mb": (_status("VmHWM") - rss_before) / 1024}))


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measure(prefix: str, mode: str, run: str, old_tail: str) -> dict[str, float]:
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            "--prefix",
            prefix,
            "--mode",
            mode,
            "--run",
            run,
            "--old-tail",
            old_tail,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"measure {mode} failed: {done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


OLD_REV = "5a1c664"  # main before the tail started at the compactor's commit
OLD_TAIL_PATH = "query/src/runstream/query/tail.py"


def old_tail_file(revision: str) -> str:
    """The old tail module of ``revision``, from git, in a temporary file (its path)."""
    source = subprocess.run(
        ["git", "show", f"{revision}:{OLD_TAIL_PATH}"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.gettempdir()) / f"runstream-old-tail-{revision}.py"
    path.write_text(source, encoding="utf-8")
    return str(path)


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000000,5000000,10000000")
    parser.add_argument("--tail-points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--old-rev", default=OLD_REV, help="the revision of the old tail")
    parser.add_argument("--old-tail", default="", help="(internal) the old tail's file")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--prefix", default="")
    parser.add_argument("--mode", default="new")
    parser.add_argument("--run", default="")
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "runstream")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "runstream-secret")
    if args.child:
        child(args)
        return
    if not args.old_tail:
        args.old_tail = old_tail_file(args.old_rev)
    tag = uuid.uuid4().hex[:6]
    sizes = [int(s) for s in args.sizes.split(",")]
    first: dict[str, float] = {}
    for size in sizes:
        prefix = f"bench-tail-{tag}-{size}"
        settings = settings_for(prefix)
        runs = {"asked": 1_000} | {f"r{i}": (size - 1_000) // (RUNS - 1) for i in range(RUNS - 1)}
        began = time.perf_counter()
        produce(settings, runs)
        compact(settings)
        print(
            f"log of {size:,} points written and compacted in {time.perf_counter() - began:.0f} s"
        )
        results = [measure(prefix, "new", "asked", args.old_tail) for _ in range(args.repeat)]
        assert all(r["rows"] == 1_000 for r in results)
        times = [r["s"] for r in results]
        mbs = [r["mb"] for r in results]
        base = first.setdefault("s", statistics.median(times))
        print(
            f"  new tail, first history (1,000 points) in a new process: {summary(times)} s, "
            f"{statistics.median(times) / base:.2f}x the smallest log; peak RSS growth {summary(mbs)} MB"
        )
        if size == sizes[0]:
            whole = [measure(prefix, "whole", "asked", args.old_tail) for _ in range(args.repeat)]
            print(
                f"  whole-log fold (tail from offset 0), same log: {summary([r['s'] for r in whole])} s, "
                f"{statistics.median(r['s'] for r in whole) / base:.1f}x the new tail; "
                f"peak RSS growth {summary([r['mb'] for r in whole])} MB"
            )
    prefix = f"bench-tail-{tag}-hot"
    settings = settings_for(prefix)
    produce(settings, {"hot": args.tail_points})
    new = [measure(prefix, "new", "hot", args.old_tail) for _ in range(args.repeat)]
    old = [measure(prefix, "old", "hot", args.old_tail) for _ in range(args.repeat)]
    assert all(r["rows"] == args.tail_points for r in new + old)
    ratio = statistics.median(r["s"] for r in old) / statistics.median(r["s"] for r in new)
    print(
        f"cold history of {args.tail_points:,} points all in the tail, new process: new "
        f"{summary([r['s'] for r in new])} s (target <= 0.300), peak RSS growth "
        f"{summary([r['mb'] for r in new])} MB; old tail (main's class, slow decode) "
        f"{summary([r['s'] for r in old])} s, {summary([r['mb'] for r in old])} MB; old/new {ratio:.1f}x"
    )


if __name__ == "__main__":
    main()
