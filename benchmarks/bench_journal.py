"""Journal benchmark: what the SDK's local journal costs the caller of ``log_metric``, against
the previous behaviour in the same run on this machine. Prints figures and ratios.

Configurations (kafka://, acks=all, idempotent, a fresh topic prefix):

- ``previous``: no journal (``journal=False``: only batches Kafka does not take are written
  to disk) and the previous queue bound (2,000,000 points, thread every 20 ms);
- ``window``: no journal, the new queue bound (5,000 points, every 10 ms), which keeps an
  accepted point <= 50 ms from the journal;
- ``journal``: the default: the new bound and every batch journaled before it is produced.

Each is run ``--rounds`` times, interleaved (so a busy machine weighs on all alike); the
median round is shown. Caller cost: mean = wall time of a loop of ``--points`` calls / points
(everything the caller pays, waits for the thread included); p99 = of ``--timed-calls``
single calls timed one by one, and the longest of them. Targets: the journal's mean <= 2 µs
(issue 16); no call blocked more than 100 ms (issue 18).

Usage: python benchmarks/bench_journal.py [--points 500000] [--rounds 3] [--kafka 127.0.0.1:9092]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from runstream.core.kafka_admin import ensure_topics
from runstream.core.settings import Settings
from runstream.tracking import Client

CONFIGS = {
    "previous": {"journal": False, "max_pending": 2_000_000, "interval": 0.02},
    "window": {"journal": False, "max_pending": 5_000, "interval": 0.01},
    "journal": {"journal": True, "max_pending": 5_000, "interval": 0.01},
}


def one_round(
    settings: Settings, config: dict[str, object], points: int, timed: int, spill: Path
) -> dict[str, float]:
    """Caller cost and acknowledged throughput of one configuration."""
    journal = bool(config["journal"])
    client = Client(
        settings=dataclasses.replace(settings, journal=journal),
        spill_dir=spill,
        max_pending=int(str(config["max_pending"])),
    )
    client.batcher.interval = float(str(config["interval"]))
    run = client.start_run(run_name="bench", capture_code=False)
    run.log_metric("warmup", 0.0)
    client.flush(60.0)
    log_metric = run.log_metric
    clock = time.perf_counter_ns
    samples = []
    for step in range(timed):
        before = clock()
        log_metric("timed", 0.5, step)
        samples.append(clock() - before)
    client.flush(120.0)
    samples.sort()
    start = time.perf_counter()
    for step in range(points):
        log_metric("loss", 0.5, step)
    logged = time.perf_counter()
    client.flush(300.0)
    acked = time.perf_counter()
    run.end()
    client.close(60.0)
    return {
        "mean_us": (logged - start) / points * 1e6,
        "p99_us": samples[int(len(samples) * 0.99)] / 1000,
        "median_us": samples[len(samples) // 2] / 1000,
        "max_ms": samples[-1] / 1e6,
        "acked_per_s": points / (acked - start),
    }


def main() -> None:
    """Run every configuration, interleaved; print the median round and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=500_000)
    parser.add_argument("--timed-calls", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kafka", default="127.0.0.1:9092")
    args = parser.parse_args()
    settings = Settings.resolve(
        f"kafka://{args.kafka}", topic_prefix=f"bench-{uuid.uuid4().hex[:8]}", environ={}
    )
    ensure_topics(settings, partitions=3)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for name, config in CONFIGS.items():
                spill = Path(tmp) / f"{name}-{round_}"
                results[name].append(
                    one_round(settings, config, args.points, args.timed_calls, spill)
                )
    rows = [
        ("caller cost, mean (µs)", "mean_us"),
        ("caller cost, median (µs)", "median_us"),
        ("caller cost, p99 (µs)", "p99_us"),
        ("longest call (ms)", "max_ms"),
        ("acknowledged points/s", "acked_per_s"),
    ]
    median = {
        name: {key: statistics.median(r[key] for r in rounds) for _, key in rows}
        for name, rounds in results.items()
    }
    print(
        f"{'log_metric (kafka://)':<28}"
        + "".join(f"{n:>12}" for n in CONFIGS)
        + "  journal/previous"
    )
    for label, key in rows:
        values = "".join(f"{median[name][key]:>12,.2f}" for name in CONFIGS)
        ratio = median["journal"][key] / median["previous"][key]
        print(f"{label:<28}{values}{ratio:>17.2f}x")
    mean = median["journal"]["mean_us"]
    print(
        f"target: journal mean <= 2 µs: {'met' if mean <= 2 else 'MISSED'} ({mean:.2f} µs; "
        f"{args.points:,} points x {args.rounds} rounds, median round)"
    )


if __name__ == "__main__":
    main()
