"""Synthetic event streams for the processor's tests and benchmarks (deterministic by seed).

:func:`workload` builds the batches of many runs the way real producers would write them
(contiguous sequences per producer, metric points as columns), then makes the stream hard:
event times are shuffled within each run, batches of different runs are interleaved, and a
share of batches is sent twice (a later, duplicate delivery of the same identities).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from runstream.contract.events import (
    Event,
    EventBatch,
    MetricColumns,
    ParamLogged,
    Payload,
    Producer,
    RunDeleted,
    RunEnded,
    RunStarted,
    RunUpdated,
    TagSet,
)

BASE_TIME_US = 1_700_000_000_000_000
METRIC_KEYS = ("loss", "accuracy", "lr", "grad_norm")
END_STATUSES = ("FINISHED", "FAILED", "KILLED")


@dataclass(frozen=True)
class Workload:
    """A stream of batches to send in order, and how many logical events it holds
    (duplicates included) and without the duplicates."""

    batches: list[EventBatch]
    events: int
    unique_events: int


def workload(
    runs: int,
    events: int,
    *,
    seed: int = 0,
    points_per_batch: int = 100,
    duplicate_share: float = 0.05,
    prefix: str = "run",
) -> Workload:
    """About ``events`` logical events over ``runs`` runs (duplicates on top), two producers
    per run, shuffled event times, some runs renamed, failed or deleted.

    Raises:
        ValueError: ``runs`` or ``events`` is not positive.
    """
    if runs <= 0 or events <= 0:
        raise ValueError(f"runs ({runs}) and events ({events}) must be positive")
    rng = random.Random(seed)
    per_run = max(1, events // runs)
    streams = [
        _run_batches(rng, f"{prefix}-{index:05d}", per_run, points_per_batch)
        for index in range(runs)
    ]
    unique = [batch for stream in streams for batch in stream]
    ordered = _interleave(rng, streams)
    for batch in rng.sample(unique, int(len(unique) * duplicate_share)):
        ordered.insert(rng.randrange(len(ordered) + 1), batch)
    return Workload(ordered, sum(map(len, ordered)), sum(map(len, unique)))


def _interleave(rng: random.Random, streams: list[list[EventBatch]]) -> list[EventBatch]:
    cursors = [0] * len(streams)
    live = [i for i, stream in enumerate(streams) if stream]
    ordered: list[EventBatch] = []
    while live:
        slot = rng.randrange(len(live))
        index = live[slot]
        ordered.append(streams[index][cursors[index]])
        cursors[index] += 1
        if cursors[index] == len(streams[index]):
            live[slot] = live[-1]
            live.pop()
    return ordered


def _run_batches(
    rng: random.Random, run_id: str, events: int, points_per_batch: int
) -> list[EventBatch]:
    producers = [
        Producer(f"{run_id}-p{rank}-{rng.getrandbits(32):08x}", "host", 1000 + rank, rank=rank)
        for rank in range(2)
    ]
    sequences = [0, 0]
    batches: list[EventBatch] = []

    def times() -> int:  # event times in random order within a 10 s window (ties happen)
        return BASE_TIME_US + rng.randrange(10_000) * 1000

    def emit(rank: int, payloads: list[Payload], columns: MetricColumns | None = None) -> None:
        batch = EventBatch(
            run_id,
            producers[rank],
            sequences[rank],
            tuple(Event(times(), payload) for payload in payloads),
            columns or MetricColumns(),
        )
        sequences[rank] += len(batch)
        batches.append(batch)

    for rank in range(2):
        emit(
            rank,
            [
                RunStarted(
                    BASE_TIME_US + rng.randrange(10**6),
                    name=f"{run_id}-name",
                    collection="synthetic",
                    tags={"rank": str(rank), "team": rng.choice(("a", "b"))},
                    git_commit=f"{rng.getrandbits(40):010x}",
                ),
                ParamLogged("lr", str(rng.choice((0.1, 0.01)))),
                ParamLogged(f"only_rank{rank}", "x"),
                TagSet("stage", rng.choice(("train", "eval")), rng.choice(("tags", "labels"))),
            ],
        )
    written = sum(map(len, batches))
    step = 0
    while written < events - 4:
        rank = rng.randrange(2)
        count = min(points_per_batch, events - 4 - written)
        columns = MetricColumns(list(METRIC_KEYS))
        for _ in range(count):
            step += rng.choice((0, 1, 1, 1))
            columns.key_index.append(rng.randrange(len(METRIC_KEYS)))
            columns.steps.append(step)
            columns.values.append(rng.random() if rng.random() > 0.01 else float("nan"))
            columns.timestamps.append((BASE_TIME_US // 1000) + rng.randrange(10**6))
        payloads: list[Payload] = []
        if rng.random() < 0.2:
            payloads.append(ParamLogged("lr", str(rng.random())))
        emit(rank, payloads, columns)
        written = sum(map(len, batches))
    endings: list[Payload] = [RunEnded(rng.choice(END_STATUSES), BASE_TIME_US + 10**7)]
    if rng.random() < 0.2:
        endings.append(RunUpdated(name=f"{run_id}-renamed"))
    if rng.random() < 0.1:
        endings.append(RunDeleted("synthetic"))
    emit(0, endings)
    return batches
