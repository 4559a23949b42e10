"""The compactor's decode (numpy columns) against the reference ``decode_batch``: the same
batches, the same errors."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runstream.contract import (
    Codec,
    Event,
    EventBatch,
    MetricColumns,
    MetricLogged,
    ParamLogged,
    Producer,
    RunEnded,
    decode_batch,
    encode_batch,
)
from runstream.contract.columns import _fast_path, _read_array, read_message
from runstream.contract.exceptions import DecodeError

CODEC = Codec()
LONGS = st.integers(-(2**63), 2**63 - 1)
DOUBLES = st.floats(allow_nan=True, allow_infinity=True)
KEYS = st.text(min_size=1, max_size=12)


@st.composite
def batches(draw: st.DrawFn) -> EventBatch:
    keys = draw(st.lists(KEYS, min_size=1, max_size=4))
    count = draw(st.integers(0, 60))
    columns = MetricColumns(
        keys,
        draw(st.lists(st.integers(0, len(keys) - 1), min_size=count, max_size=count)),
        draw(st.lists(LONGS, min_size=count, max_size=count)),
        draw(st.lists(DOUBLES, min_size=count, max_size=count)),
        draw(st.lists(LONGS, min_size=count, max_size=count)),
    )
    events = draw(
        st.lists(
            st.sampled_from(
                [
                    Event(5, RunEnded("FINISHED", 9)),
                    Event(6, ParamLogged("lr", "0.1")),
                    Event(7, MetricLogged("loss", 0.5, 3, 11)),
                ]
            ),
            max_size=3,
        )
    )
    producer = Producer(draw(KEYS), "host", draw(st.integers(0, 2**31 - 1)), rank=draw(st.none()))
    return EventBatch(draw(KEYS), producer, draw(LONGS), tuple(events), columns)


def same_floats(a: list[float], b: list[float]) -> bool:
    pack = lambda values: [struct.pack("<d", v) for v in values]  # noqa: E731  NaN bits too
    return pack(a) == pack(b)


@settings(max_examples=200, deadline=None)
@given(batches())
def test_read_message_equals_decode_batch(batch: EventBatch) -> None:
    data = encode_batch(CODEC, batch)
    fast = _fast_path(data)  # read_message takes it for long messages only: check it always
    assert fast is not None  # today's schema takes the numpy path
    reference = decode_batch(CODEC, data)
    for head, arrays in (fast, read_message(CODEC, data)):
        assert (head.run_id, head.producer, head.first_sequence, head.events) == (
            reference.run_id,
            reference.producer,
            reference.first_sequence,
            reference.events,
        )
        assert len(head.metrics) == 0
        assert arrays.keys == reference.metrics.keys
        assert arrays.key_index.dtype == np.int32
        assert arrays.key_index.tolist() == reference.metrics.key_index
        assert arrays.steps.tolist() == reference.metrics.steps
        assert arrays.timestamps.tolist() == reference.metrics.timestamps
        assert same_floats(arrays.values.tolist(), reference.metrics.values)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 400),
    st.sampled_from([0, 63, 64, 8191, 1_700_000_000_000, 2**62, -(2**62), -(2**63)]),
    st.integers(-3, 3),
    st.integers(0, 400),
)
def test_runs_of_same_width_varints_read_like_the_reference(
    count: int, base: int, stride: int, odd_one: int
) -> None:
    """Steps and times of a batch are mostly varints of one width (the block path); a
    single value of another width anywhere sends the array down the general path."""
    values = [max(-(2**63), min(2**63 - 1, base + stride * i)) for i in range(count)]
    if odd_one < count:
        values[odd_one] = base * 2 + 1 if base else 2**40
        values[odd_one] = max(-(2**63), min(2**63 - 1, values[odd_one]))
    batch = EventBatch(
        "r",
        Producer("p", "h", 1),
        0,
        (),
        MetricColumns(["k"], [0] * count, values, [0.5] * count, values[::-1]),
    )
    fast = _fast_path(encode_batch(CODEC, batch))  # a few values one by one, more at once
    assert fast is not None
    _, arrays = fast
    reference = decode_batch(CODEC, encode_batch(CODEC, batch))
    assert arrays.steps.tolist() == reference.metrics.steps == values
    assert arrays.timestamps.tolist() == reference.metrics.timestamps


def reason(data: bytes) -> str:
    with pytest.raises(DecodeError) as error:
        decode_batch(CODEC, data)
    return error.value.reason


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d[:-1],  # truncated
        lambda d: d[: len(d) // 2],
        lambda d: d + b"\x00",  # a byte after the record
        lambda d: b"\xc3\x01" + bytes(8) + d[10:],  # unknown fingerprint
        lambda d: b"junk" + d,  # unknown framing
        lambda d: d[:12],
    ],
)
def test_damaged_messages_fail_with_the_reference_reason(damage) -> None:  # type: ignore[no-untyped-def]
    batch = EventBatch(
        "r",
        Producer("p", "h", 1),
        0,
        (Event(1, RunEnded("FINISHED", 2)),),
        MetricColumns(["a", "b"], [0, 1], [1, 2], [0.5, math.inf], [10, 20]),
    )
    data = damage(encode_batch(CODEC, batch))
    expected = reason(data)
    with pytest.raises(DecodeError) as error:
        read_message(CODEC, data)
    assert error.value.reason == expected


@pytest.mark.parametrize(
    "columns",
    [
        MetricColumns(["a"], [1], [1], [1.0], [1]),  # key index past the keys
        MetricColumns(["a"], [-1], [1], [1.0], [1]),
        MetricColumns(["a"], [0, 0], [1], [1.0], [1]),  # columns of different lengths
        MetricColumns(["a"], [0], [1], [1.0, 2.0], [1]),
    ],
)
def test_inconsistent_columns_are_a_decode_error(columns: MetricColumns) -> None:
    data = encode_batch(CODEC, EventBatch("r", Producer("p", "h", 1), 0, (), columns))
    with pytest.raises(DecodeError, match="metric") as error:
        read_message(CODEC, data)
    assert error.value.reason == "body"


def zigzag(value: int) -> bytes:
    number = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def test_arrays_written_in_several_blocks_are_read_whole() -> None:
    # block of 2 with its byte size (negative count), a plain block of 1, the end
    items = [zigzag(300), zigzag(-2)]
    data = zigzag(-2) + zigzag(len(b"".join(items))) + b"".join(items)
    data += zigzag(1) + zigzag(2**62) + zigzag(0) + b"tail"
    values, position = _read_array(data, np.frombuffer(data, np.uint8), 0, "long")
    assert values.tolist() == [300, -2, 2**62]
    assert data[position:] == b"tail"
