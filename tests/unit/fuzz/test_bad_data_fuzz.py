"""Issue 17's fuzz test (embedded mode, no servers): random and mutated messages interleaved
with good traffic go through the compactor (the embedded ``process``, which also folds run
state) and the query tail. Every good point is read back exactly once (from the Parquet
files by DuckDB, and from the tail), every bad message is in the dead-letter file with a
reason, and nothing raises."""

from __future__ import annotations

import uuid
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runstream.apps.embedded import dead_letter_path, process
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
from runstream.contract.deadletter import REASON
from runstream.contract.layout import METRICS_DIR
from runstream.core.deadletters import read_dead_letters
from runstream.core.locallog import LogWriter
from runstream.core.logsource import events_folder
from runstream.core.settings import Settings
from runstream.query.tail import LocalEventLog, Tail

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


def mutations(data: st.DataObject, value: bytes) -> bytes:
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


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_bad_messages_never_stop_a_reader_nor_hide_good_points(
    tmp_path: Path, data: st.DataObject
) -> None:
    root = tmp_path / uuid.uuid4().hex
    config = Settings.resolve(f"file://{root}", environ={})
    goods = [data.draw(good_batch(i)) for i in range(data.draw(st.integers(1, 6)))]
    messages: list[tuple[str, bytes, bool]] = [
        (b.run_id, encode_batch(CODEC, b), True) for b in goods
    ]
    bad = bad_batches(goods[0])
    chosen = data.draw(st.lists(st.sampled_from(bad), min_size=1, max_size=len(bad)))
    messages += [(key, value, False) for key, value in chosen]
    messages += [
        ("run-a", mutations(data, encode_batch(CODEC, goods[-1])), False)
        for _ in range(data.draw(st.integers(1, 4)))
    ]
    messages = data.draw(st.permutations(messages))
    writer = LogWriter(events_folder(config) / "writer.avro")
    for key, value, _ in messages:
        writer.append([(key, value)])
    writer.close()

    tail = Tail(LocalEventLog(events_folder(config)))
    assert tail.refresh() == len(messages)
    result = process(config)
    assert process(config).records == 0  # caught up; nothing to redo

    expected = sorted(
        (b.producer.id, s, b.metrics.keys[k], st_, v)
        for b in goods
        for s, (k, st_, v) in enumerate(
            zip(b.metrics.key_index, b.metrics.steps, b.metrics.values, strict=True),
            b.columns_first_sequence,
        )
    )
    store = Path(config.store) / METRICS_DIR
    parquet = duckdb.sql(
        f"select producer_id, sequence, key, step, value from read_parquet('{store}/**/*.parquet')"
    ).fetchall()
    assert sorted(parquet) == expected
    in_tail = []
    for run_id in ("run-a", "run-b"):
        table = tail.points(run_id, {})
        in_tail += list(
            zip(
                *(
                    table[c].to_pylist()
                    for c in ("producer_id", "sequence", "key", "step", "value")
                ),
                strict=True,
            )
        )
    assert sorted(in_tail) == expected

    bad_count = sum(1 for *_, ok in messages if not ok)
    letters = list(read_dead_letters(dead_letter_path(config)))
    assert result.dead_letters == bad_count == tail.skipped == len(letters)
    assert sorted(letter["value"] for letter in letters) == sorted(
        v for _, v, ok in messages if not ok
    )
    assert all(letter["headers"][REASON] for letter in letters)
