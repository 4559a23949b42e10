"""The numpy fold of metric columns (the query tail's) equals the reducer's own fold of the
same batches: latest point, min and max per key, NaN and signed zeros included."""

from __future__ import annotations

import math
import random

from runstream.contract import Codec, EventBatch, MetricColumns, Producer, encode_batch
from runstream.contract.columns import apply_arrays, read_message
from runstream.contract.state import RunState, apply_batch

SPECIAL = [math.nan, -0.0, 0.0, math.inf, -math.inf, 1.5, -2.5]


def batch(rng: random.Random, producer: Producer, first: int) -> EventBatch:
    keys = ["a", "b", "c"][: rng.randint(1, 3)]
    n = rng.randint(1, 120)  # both folds: the loop (up to 32 points) and numpy
    index = [rng.randrange(len(keys)) for _ in range(n)]
    steps = [rng.randint(0, 5) for _ in range(n)]  # many ties: the later index wins
    values = [rng.choice(SPECIAL) if rng.random() < 0.4 else rng.uniform(-9, 9) for _ in range(n)]
    stamps = [1_700_000_000_000 + rng.randint(0, 2) for _ in range(n)]
    return EventBatch("r", producer, first, (), MetricColumns(keys, index, steps, values, stamps))


def test_apply_arrays_equals_the_reducer_on_random_batches() -> None:
    codec = Codec()
    rng = random.Random(5)
    for _ in range(300):
        reduced, fast = RunState("r"), RunState("r")
        first = 0
        for _ in range(rng.randint(1, 4)):
            producer = Producer(rng.choice(["p1", "p2"]), "h", 1)
            made = batch(rng, producer, first)
            first += len(made)
            apply_batch(reduced, made)
            decoded, arrays = read_message(codec, encode_batch(codec, made))
            apply_arrays(fast, decoded.producer.id, decoded.columns_first_sequence, arrays)
        assert fast.metrics == reduced.metrics  # MetricSummary compares floats bit for bit
