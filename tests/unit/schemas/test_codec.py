"""The event contract: pinned bytes, a standard Avro reader, every old version, bad input."""

from __future__ import annotations

import io
import json
import math
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.utils import generate_many

from runstream.contract import (
    ArtifactLogged,
    Codec,
    DecodeError,
    EncodeError,
    Event,
    EventBatch,
    ExperimentCreated,
    ExperimentDeleted,
    ExperimentRenamed,
    ExperimentRestored,
    Heartbeat,
    LoggedModelCreated,
    LoggedModelFinalized,
    LogLine,
    MetricColumns,
    MetricLogged,
    ParamLogged,
    Producer,
    RunDeleted,
    RunEnded,
    RunRestored,
    RunStarted,
    RunUpdated,
    TagSet,
    decode_batch,
    encode_batch,
    versions,
)
from runstream.contract.codec import SINGLE_OBJECT_MAGIC

AVRO_DIR = Path(str(resources.files("runstream.contract").joinpath("avro")))

KNOWN = EventBatch(
    run_id="run-1",
    producer=Producer(id="p0", host="h", pid=7, rank=0, world_size=2),
    first_sequence=41,
    events=(Event(1_700_000_000_000_000, ParamLogged("lr", "0.001")),),
    metrics=MetricColumns(
        ["loss"], [0, 0], [1, 2], [0.5, 0.25], [1_700_000_000_000, 1_700_000_000_001]
    ),
)
# Written once by this codec (when v1 was today's version) and checked by hand against the
# Avro spec: C3 01, the CRC-64-AVRO fingerprint of event_batch.v1 (little-endian), then the
# binary body. Such bytes stay on the topic forever: today's reader must decode them.
KNOWN_V1_HEX = (
    "c30198e1cecc1e774e4a"  # magic + fingerprint
    "0a72756e2d31"  # run_id "run-1"
    "0470300268"  # producer id "p0", host "h"
    "0e"  # pid 7
    "0200"
    "00"
    "0204"  # rank 0, local_rank null, world_size 2
    "00"  # worker null
    "52"  # first_sequence 41
    "02"  # one event
    "8080f28183898506"  # time_us 1_700_000_000_000_000 (zigzag varint)
    "02"  # union branch 1: ParamLogged
    "046c72"  # "lr"
    "0a302e303031"  # "0.001"
    "00"  # end of events
    "02086c6f737300"  # keys ["loss"]
    "04000000"  # key_index [0, 0]
    "04020400"  # steps [1, 2]
    "04000000000000e03f000000000000d03f00"  # values [0.5, 0.25]
    "0480a0abfef96282a0abfef96200"  # timestamps
)
# Version 2 only adds a union branch at the end (ArtifactLogged): the body of the same batch
# is byte-identical, only the fingerprint differs.
V2_FINGERPRINT_HEX = "fb5c7400ba708839"
KNOWN_V2_HEX = "c301" + V2_FINGERPRINT_HEX + KNOWN_V1_HEX[20:]
# Version 3 adds the Heartbeat branch at the end: again only the fingerprint differs.
V3_FINGERPRINT_HEX = "3018098de11c5ecb"
# Version 4 adds the MLflow payloads at the end: again only the fingerprint differs.
V4_FINGERPRINT_HEX = "cef506862ffaba07"
KNOWN_HEX = "c301" + V4_FINGERPRINT_HEX + KNOWN_V1_HEX[20:]


def test_known_batch_encodes_to_pinned_bytes() -> None:
    assert encode_batch(Codec(), KNOWN).hex() == KNOWN_HEX


def test_pinned_bytes_decode_to_the_known_batch() -> None:
    assert decode_batch(Codec(), bytes.fromhex(KNOWN_HEX)) == KNOWN


def test_v1_bytes_decode_into_todays_batch_unchanged() -> None:
    assert versions.latest("event_batch").version >= 2
    assert decode_batch(Codec(), bytes.fromhex(KNOWN_V1_HEX)) == KNOWN


def test_v2_bytes_decode_into_todays_batch_unchanged() -> None:
    assert versions.latest("event_batch").version >= 3
    assert decode_batch(Codec(), bytes.fromhex(KNOWN_V2_HEX)) == KNOWN


def test_a_v2_reader_reads_v3_batches_without_a_heartbeat_and_a_v3_reader_reads_one() -> None:
    v2 = next(v for v in versions.all_versions() if (v.name, v.version) == ("event_batch", 2))
    v3 = next(v for v in versions.all_versions() if (v.name, v.version) == ("event_batch", 3))
    record = schemaless_reader(io.BytesIO(encode_batch(Codec(), KNOWN)[10:]), v3.parsed, v2.parsed)
    assert record["events"][0]["payload"] == {"key": "lr", "value": "0.001"}
    beat = EventBatch("r", Producer("p", "h", 1), 0, (Event(5, Heartbeat(750)),))
    data = encode_batch(Codec(), beat)
    raw = json.loads((AVRO_DIR / "event_batch.v3.avsc").read_text())
    plain = schemaless_reader(io.BytesIO(data[10:]), parse_schema(raw))
    assert plain["events"][0]["payload"] == {"interval_ms": 750}


def test_every_v1_payload_written_by_a_v1_writer_reads_unchanged() -> None:
    v1 = next(v for v in versions.all_versions() if (v.name, v.version) == ("event_batch", 1))
    events = tuple(Event(i, payload) for i, payload in enumerate(V1_PAYLOADS))
    batch = EventBatch("r", Producer("p", "h", 1), 0, events)
    buffer = io.BytesIO()
    buffer.write(SINGLE_OBJECT_MAGIC + v1.fingerprint)
    schemaless_writer(buffer, v1.parsed, batch.to_record())
    assert decode_batch(Codec(), buffer.getvalue()) == batch


def test_a_v1_reader_cannot_be_handed_an_artifact_but_reads_v2_batches_without_one() -> None:
    # Old readers resolve v2 data written without the new branch (the branch index of every
    # v1 payload is unchanged in v2).
    v1 = next(v for v in versions.all_versions() if (v.name, v.version) == ("event_batch", 1))
    data = encode_batch(Codec(), KNOWN)
    v2 = versions.latest("event_batch")
    record = schemaless_reader(io.BytesIO(data[10:]), v2.parsed, v1.parsed)
    assert record["events"][0]["payload"] == {"key": "lr", "value": "0.001"}


def test_a_v2_reader_reads_v4_batches_without_the_new_payloads() -> None:
    # The v3 and v4 branches are appended to the union: every v2 branch keeps its index.
    v2 = next(v for v in versions.all_versions() if (v.name, v.version) == ("event_batch", 2))
    data = encode_batch(Codec(), KNOWN)
    v4 = versions.latest("event_batch")
    assert v4.version == 4
    record = schemaless_reader(io.BytesIO(data[10:]), v4.parsed, v2.parsed)
    assert record["events"][0]["payload"] == {"key": "lr", "value": "0.001"}  # type: ignore[index,call-overload]


def test_a_v4_experiment_batch_reads_with_a_standard_avro_reader() -> None:
    raw = json.loads((AVRO_DIR / "event_batch.v4.avsc").read_text())
    batch = EventBatch(
        "experiment-stream.7", Producer("p", "h", 1), 0, (Event(1, ExperimentCreated("e")),)
    )
    data = encode_batch(Codec(), batch)
    record = schemaless_reader(io.BytesIO(data[10:]), parse_schema(raw), None)
    assert record["events"][0]["payload"] == {"name": "e"}  # type: ignore[index,call-overload]


def test_a_standard_avro_reader_reads_what_the_codec_writes() -> None:
    data = encode_batch(Codec(), KNOWN)
    assert data[:2] == SINGLE_OBJECT_MAGIC
    raw = json.loads((AVRO_DIR / "event_batch.v4.avsc").read_text())
    record = schemaless_reader(io.BytesIO(data[10:]), parse_schema(raw))
    assert record["run_id"] == "run-1"
    assert record["producer"]["world_size"] == 2
    assert record["events"][0]["payload"] == {"key": "lr", "value": "0.001"}
    assert record["metrics"]["values"] == [0.5, 0.25]


def test_fingerprint_is_the_crc64_avro_of_the_canonical_form() -> None:
    # Avro's spec gives CRC-64-AVRO("null") = 0x63dd24e7cc258f8a.
    from fastavro.schema import fingerprint

    assert fingerprint('"null"', "CRC-64-AVRO") == (0x63DD24E7CC258F8A).to_bytes(8, "little").hex()
    latest = versions.latest("event_batch")
    assert encode_batch(Codec(), KNOWN)[2:10] == latest.fingerprint


V1_PAYLOADS = [
    RunStarted(start_time_us=5, name="n", collection="c", tags={"a": "b"}, git_dirty=True),
    ParamLogged("k", "v"),
    MetricLogged("m", math.inf, 3, 4),
    TagSet("k", "v", "labels"),
    RunEnded("FAILED", 9),
    LogLine("warn", "careful", {"epoch": "3"}),
    RunUpdated(name="renamed"),
    RunDeleted(),
]


@pytest.mark.parametrize(
    "payload",
    [
        *V1_PAYLOADS,
        ArtifactLogged("model/model.pkl", "s3://b/k", 12, "ab" * 32, "application/octet-stream"),
        ArtifactLogged("a.txt", "file:///tmp/a"),
        Heartbeat(30_000),
        Heartbeat(),
        RunRestored(),
        ExperimentCreated("vision"),
        ExperimentRenamed("vision-2"),
        ExperimentDeleted(),
        ExperimentRestored(),
        LoggedModelCreated("model", "7", "run-1", "sklearn"),
        LoggedModelCreated("model", "7"),
        LoggedModelFinalized("READY"),
    ],
)
def test_every_payload_round_trips(payload: object) -> None:
    batch = EventBatch("r", Producer("p", "h", 1), 0, (Event(1, payload),))  # type: ignore[arg-type]
    assert decode_batch(Codec(), encode_batch(Codec(), batch)) == batch


def test_nan_survives_the_round_trip() -> None:
    batch = EventBatch(
        "r", Producer("p", "h", 1), 0, metrics=MetricColumns(["m"], [0], [0], [math.nan], [0])
    )
    (value,) = decode_batch(Codec(), encode_batch(Codec(), batch)).metrics.values
    assert math.isnan(value)


@pytest.mark.parametrize(
    "version", [v for v in versions.all_versions()], ids=lambda v: f"{v.name}.v{v.version}"
)
def test_todays_reader_reads_every_released_version(version: versions.SchemaVersion) -> None:
    codec = Codec()
    for record in generate_many(version.parsed, 20):
        buffer = io.BytesIO()
        buffer.write(SINGLE_OBJECT_MAGIC + version.fingerprint)
        schemaless_writer(buffer, version.parsed, record)
        name, decoded = codec.decode(buffer.getvalue())
        assert name == version.name
        assert isinstance(decoded, dict)


def test_released_versions_are_never_edited() -> None:
    # A released version's fingerprint is frozen: editing a .avsc must be a new version.
    frozen = {
        ("event_batch", 1): "98e1cecc1e774e4a",
        ("event_batch", 2): V2_FINGERPRINT_HEX,
        ("event_batch", 3): V3_FINGERPRINT_HEX,
        ("run_state", 1): "4d4322120ca5735d",
        ("run_state", 2): "a24382bb4fd679ed",
        ("run_state", 3): "e7d4dfe53fbf6889",
        ("event_batch", 4): V4_FINGERPRINT_HEX,
        ("run_state", 4): "7cd1bfaeb05248bc",
        ("run_state", 5): "eaca723d3db8b249",
    }
    for version in versions.all_versions():
        if (version.name, version.version) in frozen:
            assert version.fingerprint.hex() == frozen[(version.name, version.version)]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (None, "empty"),
        (b"garbage bytes", "framing"),
        (SINGLE_OBJECT_MAGIC + b"\x01\x02", "truncated"),
        (SINGLE_OBJECT_MAGIC + b"\xff" * 8 + b"body", "fingerprint"),
        (bytes.fromhex(KNOWN_HEX)[:-3], "truncated"),
        (bytes.fromhex(KNOWN_V1_HEX)[:-3], "truncated"),
        (bytes.fromhex(KNOWN_HEX) + b"\x00", "body"),
        (b"\x00\x00\x00\x00\x07body", "registry"),
    ],
)
def test_bad_messages_raise_decode_error_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_batch(Codec(), data)
    assert caught.value.reason == reason


def test_a_record_that_does_not_fit_raises_encode_error_naming_the_schema() -> None:
    with pytest.raises(EncodeError, match="event_batch"):
        Codec().encode("event_batch", {"run_id": 5})


def test_confluent_framed_messages_decode_through_a_registry() -> None:
    schema_text = (AVRO_DIR / "event_batch.v1.avsc").read_text()

    class Registry:
        def get_schema(self, schema_id: int) -> SimpleNamespace:
            assert schema_id == 42
            return SimpleNamespace(schema_str=schema_text)

    buffer = io.BytesIO()
    buffer.write(b"\x00" + (42).to_bytes(4, "big"))
    schemaless_writer(buffer, parse_schema(json.loads(schema_text)), KNOWN.to_record())
    assert decode_batch(Codec(registry=Registry()), buffer.getvalue()) == KNOWN
