"""Issue 17: a run state message fits Kafka's 1 MB limit for ANY run the validation accepts
(run_state v4 keeps the least keys of each map, says ``*_truncated`` past them, and cuts
long values at MAX_STATE_VALUE_BYTES with a ``cut`` register), and folding through the
projected encoding (what the processor's table does) gives the same bytes as encoding the
full fold. The worst case is built with every field at its limit and checked with fastavro
over the bytes, not with the codec under test."""

from __future__ import annotations

import io
import random

import fastavro

from runstream.contract import Codec, EventBatch, MetricColumns, Producer
from runstream.contract.events import (
    ArtifactLogged,
    Event,
    ParamLogged,
    RunDeleted,
    RunStarted,
    TagSet,
)
from runstream.contract.limits import (
    MAX_KEY_LENGTH,
    MAX_PARAM_KEY_LENGTH,
    MAX_PARAM_LENGTH,
    MAX_STATE_ARTIFACTS,
    MAX_STATE_BYTES,
    MAX_STATE_METRIC_KEYS,
    MAX_STATE_PARAM_KEYS,
    MAX_STATE_TAG_KEYS,
    MAX_STATE_VALUE_BYTES,
    MAX_TAG_LENGTH,
)
from runstream.contract.state import RunState, apply_batch, decode_state, encode_state
from runstream.contract.validation import MAX_PRODUCER_ID_LENGTH, MAX_TEXT_LENGTH, validate_batch
from runstream.contract.versions import latest

CODEC = Codec()
WIDE = "\U0001f600"  # four bytes of UTF-8 per character


def _batch(run_id: str, first: int, keys: list[str]) -> EventBatch:
    n = len(keys)
    columns = MetricColumns(keys, list(range(n)), [first] * n, [float(first)] * n, [first] * n)
    return EventBatch(run_id, Producer("p", "h", 1), first * 100_000, (), columns)


def _fastavro(data: bytes) -> dict[str, object]:
    """Decode a single-object-framed run state with fastavro alone (2 magic bytes, an
    8-byte fingerprint, the body), against the latest schema file."""
    assert data[:2] == b"\xc3\x01"
    schema = fastavro.parse_schema(latest("run_state").raw)
    record = fastavro.schemaless_reader(io.BytesIO(data[10:]), schema, None)
    assert isinstance(record, dict)
    return record


def _worst_case_batches() -> list[EventBatch]:
    producer = Producer("P" * MAX_PRODUCER_ID_LENGTH, "h", 1)
    big = WIDE * MAX_TEXT_LENGTH
    events: list[Event] = [
        Event(
            10**15,
            RunStarted(
                10**15,
                name=WIDE * MAX_KEY_LENGTH,
                collection=WIDE * MAX_KEY_LENGTH,
                tags={
                    f"{i:04d}".ljust(MAX_KEY_LENGTH, "t"): WIDE * MAX_TAG_LENGTH for i in range(80)
                },
                source_file=big,
                command=big,
                git_commit=big,
                git_dirty=True,
                python_version=big,
            ),
        ),
        Event(10**15, RunDeleted(big)),
    ]
    events += [
        Event(
            10**15,
            ParamLogged(f"{i:04d}".ljust(MAX_PARAM_KEY_LENGTH, "p"), WIDE * MAX_PARAM_LENGTH),
        )
        for i in range(150)
    ]
    events += [
        Event(
            10**15,
            TagSet(f"{i:04d}".ljust(MAX_KEY_LENGTH, "l"), WIDE * MAX_TAG_LENGTH, "labels"),
        )
        for i in range(80)
    ]
    path = "/".join(["a" * 100] * 10)[:1020]
    events += [
        Event(
            10**15,
            ArtifactLogged(
                f"{path}{i:03d}", "s3://b/" + "u" * (MAX_TEXT_LENGTH - 7), 2**62, big, big
            ),
        )
        for i in range(40)
    ]
    keys = [f"{i:05d}".ljust(MAX_KEY_LENGTH, "m") for i in range(MAX_STATE_METRIC_KEYS + 500)]
    n = len(keys)
    columns = MetricColumns(
        keys, list(range(n)), [-(2**63)] * n, [-1.5e308] * n, [7_000_000_000_000] * n
    )
    # the batches need not fit a Kafka message themselves: only the state is checked here
    first = 2**62
    return [
        EventBatch("r" * 128, producer, first, tuple(events[:200])),
        EventBatch("r" * 128, producer, first + 200, tuple(events[200:]), columns),
    ]


def test_a_run_with_every_field_at_its_limit_fits_under_max_state_bytes() -> None:
    batches = _worst_case_batches()
    state: RunState | None = None
    for batch in batches:
        state = apply_batch(state, validate_batch(batch))
    assert state is not None
    data = encode_state(CODEC, state)
    assert len(data) < MAX_STATE_BYTES, len(data)
    record = _fastavro(data)
    assert record["metrics_truncated"] and len(record["metrics"]) == MAX_STATE_METRIC_KEYS  # type: ignore[arg-type]
    assert record["params_truncated"] and len(record["params"]) == MAX_STATE_PARAM_KEYS  # type: ignore[arg-type]
    assert record["tags_truncated"] and len(record["tags"]) == MAX_STATE_TAG_KEYS  # type: ignore[arg-type]
    assert record["labels_truncated"] and len(record["labels"]) == MAX_STATE_TAG_KEYS  # type: ignore[arg-type]
    assert record["artifacts_truncated"] and len(record["artifacts"]) == MAX_STATE_ARTIFACTS  # type: ignore[arg-type]
    params = record["params"]
    assert isinstance(params, dict)
    assert sorted(params) == sorted(state.params)[:MAX_STATE_PARAM_KEYS]
    for register in params.values():
        value = register["value"]
        assert register["cut"] and len(value.encode()) <= MAX_STATE_VALUE_BYTES
        assert value != WIDE * MAX_PARAM_LENGTH and (WIDE * MAX_PARAM_LENGTH).startswith(value)
    artifact = next(iter(record["artifacts"].values()))  # type: ignore[attr-defined]
    assert artifact["cut"] and artifact["size"] == 2**62
    decoded = decode_state(CODEC, data)
    assert decoded.params_truncated and decoded.tags_truncated and decoded.labels_truncated
    assert all(r.cut for r in decoded.params.values())
    assert decoded.deleted is not None and decoded.deleted.reason is not None
    assert len(decoded.deleted.reason.encode()) <= MAX_STATE_VALUE_BYTES
    # re-encoding what was decoded gives the same bytes (the processor's table round trip)
    assert encode_state(CODEC, decoded) == data


def test_30000_keys_of_250_characters_fit_under_1_mb() -> None:
    keys = [f"{i:06d}" + "k" * 244 for i in range(30_000)]
    state = apply_batch(None, _batch("wide", 1, keys))
    data = encode_state(CODEC, state)
    assert len(data) < MAX_STATE_BYTES
    decoded = decode_state(CODEC, data)
    assert decoded.metrics_truncated
    assert sorted(decoded.metrics) == sorted(keys)[:MAX_STATE_METRIC_KEYS]


def test_a_small_run_is_whole_and_not_truncated() -> None:
    batch = _batch("small", 1, ["a", "b"])
    params = EventBatch(
        "small", Producer("p", "h", 1), 0, (Event(5, ParamLogged("lr", "é" * 500)),)
    )
    state = apply_batch(apply_batch(None, batch), params)
    decoded = decode_state(CODEC, encode_state(CODEC, state))
    assert not decoded.metrics_truncated and not decoded.params_truncated
    assert decoded == state and not decoded.params["lr"].cut


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


def _register_batches(rng: random.Random, count: int) -> list[EventBatch]:
    """Params, tags, labels and artifacts over more keys than a message carries, with long
    and short values overwriting each other, in random order, some delivered twice."""
    params = [f"p{i:03d}" for i in range(MAX_STATE_PARAM_KEYS + 30)]
    tags = [f"t{i:03d}" for i in range(MAX_STATE_TAG_KEYS + 20)]
    paths = [f"a/{i:03d}.bin" for i in range(MAX_STATE_ARTIFACTS + 10)]

    def text() -> str:
        return rng.choice(["x", "é" * rng.randrange(1, 1200), "y" * rng.randrange(990, 1010)])

    batches = []
    for b in range(count):
        events = []
        for _ in range(rng.randrange(1, 40)):
            time_us = rng.randrange(1, 1000)
            kind = rng.randrange(4)
            if kind == 0:
                payload: object = ParamLogged(rng.choice(params), text())
            elif kind == 1:
                payload = TagSet(rng.choice(tags), text())
            elif kind == 2:
                payload = TagSet(rng.choice(tags), text(), "labels")
            else:
                payload = ArtifactLogged(rng.choice(paths), text(), 3, text(), text())
            events.append(Event(time_us, payload))  # type: ignore[arg-type]
        producer = Producer(f"w{b % 3}", "h", 1)
        batches.append(EventBatch("r", producer, b * 1000, tuple(events)))
    batches += rng.sample(batches, count // 4)  # duplicate deliveries
    rng.shuffle(batches)
    return batches


def test_params_tags_labels_artifacts_fold_through_the_projection_exactly() -> None:
    for seed in range(5):
        rng = random.Random(seed)
        batches = _register_batches(rng, 60)
        full: RunState | None = None
        stored: bytes | None = None
        for start in range(0, len(batches), 3):
            chunk = batches[start : start + 3]
            state = None if stored is None else decode_state(CODEC, stored)
            for batch in chunk:
                full = apply_batch(full, batch)
                state = apply_batch(state, batch)
            assert state is not None
            stored = encode_state(CODEC, state)
        assert full is not None and stored == encode_state(CODEC, full)
        decoded = decode_state(CODEC, stored)
        assert decoded.params_truncated and decoded.tags_truncated
        assert decoded.labels_truncated and decoded.artifacts_truncated
        assert any(r.cut for r in decoded.params.values())
