"""Strategies of the bad-data fuzz tests (issue 17): valid batches with extreme values,
messages that break a rule of the contract, and messages no reader can decode."""

from __future__ import annotations

from hypothesis import strategies as st

from runstream.contract import (
    Codec,
    Event,
    EventBatch,
    MetricColumns,
    Producer,
    RunStarted,
    TagSet,
    encode_batch,
)

CODEC = Codec()
STEPS = st.integers(-(2**63), 2**63 - 1)
VALUES = st.floats(allow_nan=False, width=64)


@st.composite
def good_batch(draw: st.DrawFn, index: int) -> EventBatch:
    """A valid batch of its own producer: extreme steps and values included."""
    count = draw(st.integers(1, 6))
    keys = draw(
        st.lists(
            st.sampled_from(["loss", "acc", "a/b c:d", "k" * 250]),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    columns = MetricColumns(
        keys,
        draw(st.lists(st.integers(0, len(keys) - 1), min_size=count, max_size=count)),
        draw(st.lists(STEPS, min_size=count, max_size=count)),
        draw(st.lists(VALUES, min_size=count, max_size=count)),
        [1_700_000_000_000 + i for i in range(count)],
    )
    first = draw(st.sampled_from([0, 2**62, 2**63 - 1 - count]))
    run_id = draw(st.sampled_from(["run-a", "run-b"]))
    return EventBatch(run_id, Producer(f"good-{index}", "h", 1), first, (), columns)


def bad_batches(good: EventBatch) -> list[tuple[str, bytes]]:
    """Messages that break a rule, each (key, value)."""
    producer = Producer("bad", "h", 1)
    columns = good.metrics
    started = (Event(1, RunStarted(1, "n")),)
    return [
        ("run-a", encode_batch(CODEC, EventBatch("run-a", producer, 2**63 - 1, started, columns))),
        ("../../x", encode_batch(CODEC, EventBatch("../../x", producer, 0, started))),
        ("abc\n", encode_batch(CODEC, EventBatch("abc\n", producer, 0, started))),
        (
            "run-a",
            encode_batch(
                CODEC,
                EventBatch(
                    "run-a", producer, 0, (), MetricColumns(["k" * 100_000], [0], [1], [1.0], [1])
                ),
            ),
        ),
        (
            "run-a",
            encode_batch(
                CODEC,
                EventBatch("run-a", producer, 0, (), MetricColumns(["a"], [3], [1], [1.0], [1])),
            ),
        ),
        (
            "run-a",
            encode_batch(
                CODEC, EventBatch("run-a", producer, 0, (Event(1, TagSet("t", "v" * 500_000)),))
            ),
        ),
        ("run-b", encode_batch(CODEC, EventBatch("run-a", producer, 0, started))),
    ]


def mutation(data: st.DataObject, value: bytes) -> bytes:
    """A message no reader can accept: cut short, its header broken, or random bytes."""
    kind = data.draw(st.sampled_from(["truncate", "header", "random", "empty-body"]))
    if kind == "truncate":
        return value[: data.draw(st.integers(0, len(value) - 2))]
    if kind == "header":
        at = data.draw(st.integers(0, 9))
        return value[:at] + bytes([value[at] ^ data.draw(st.integers(1, 255))]) + value[at + 1 :]
    if kind == "random":
        return data.draw(st.binary(min_size=0, max_size=200))
    return value[:10]


def points_of(batches: list[EventBatch]) -> list[tuple[str, int, str, int, float]]:
    """(producer, sequence, key, step, value) of every column point, sorted."""
    return sorted(
        (b.producer.id, s, b.metrics.keys[k], step, v)
        for b in batches
        for s, (k, step, v) in enumerate(
            zip(b.metrics.key_index, b.metrics.steps, b.metrics.values, strict=True),
            b.columns_first_sequence,
        )
    )


def traffic(
    data: st.DataObject, goods: int
) -> tuple[list[EventBatch], list[tuple[str, bytes, bool]]]:
    """``goods`` valid batches and bad messages, shuffled: (key, value, good?) each."""
    batches = [data.draw(good_batch(i)) for i in range(goods)]
    messages = [(b.run_id, encode_batch(CODEC, b), True) for b in batches]
    bad = bad_batches(batches[0])
    chosen = data.draw(st.lists(st.sampled_from(bad), min_size=1, max_size=len(bad)))
    messages += [(key, value, False) for key, value in chosen]
    messages += [
        ("run-a", mutation(data, encode_batch(CODEC, batches[-1])), False)
        for _ in range(data.draw(st.integers(1, 4)))
    ]
    return batches, data.draw(st.permutations(messages))
