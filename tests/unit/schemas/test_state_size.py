"""Issue 17: a run state message fits Kafka's 1 MB limit whatever the number of metric keys
(run_state v3 carries the least MAX_STATE_METRIC_KEYS keys and says it is truncated), and
folding through the truncated encoding (what the processor's table does) gives the same
bytes as encoding the full fold."""

from __future__ import annotations

import random

from runstream.contract import Codec, EventBatch, MetricColumns, Producer
from runstream.contract.limits import MAX_STATE_METRIC_KEYS
from runstream.contract.state import apply_batch, decode_state, encode_state

CODEC = Codec()


def _batch(run_id: str, first: int, keys: list[str]) -> EventBatch:
    n = len(keys)
    columns = MetricColumns(keys, list(range(n)), [first] * n, [float(first)] * n, [first] * n)
    return EventBatch(run_id, Producer("p", "h", 1), first * 100_000, (), columns)


def test_30000_keys_of_250_characters_fit_under_1_mb() -> None:
    keys = [f"{i:06d}" + "k" * 244 for i in range(30_000)]
    state = apply_batch(None, _batch("wide", 1, keys))
    data = encode_state(CODEC, state)
    assert len(data) < 1_000_000
    decoded = decode_state(CODEC, data)
    assert decoded.metrics_truncated
    assert sorted(decoded.metrics) == sorted(keys)[:MAX_STATE_METRIC_KEYS]


def test_a_small_run_is_whole_and_not_truncated() -> None:
    state = apply_batch(None, _batch("small", 1, ["a", "b"]))
    decoded = decode_state(CODEC, encode_state(CODEC, state))
    assert not decoded.metrics_truncated and decoded == state


def test_folding_through_the_truncated_encoding_equals_encoding_the_full_fold() -> None:
    rng = random.Random(17)
    names = [f"key{i:05d}" for i in range(MAX_STATE_METRIC_KEYS + 700)]
    batches = [_batch("r", i + 1, rng.sample(names, 400)) for i in range(12)]
    full = None
    stored: bytes | None = None
    for batch in batches:
        full = apply_batch(full, batch)
        state = None if stored is None else decode_state(CODEC, stored)
        stored = encode_state(CODEC, apply_batch(state, batch))
    assert full is not None and stored == encode_state(CODEC, full)
    assert decode_state(CODEC, stored).metrics_truncated
