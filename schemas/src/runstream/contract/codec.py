"""The one codec every component uses: Avro single-object encoding, no registry needed.

A message is ``C3 01`` + the writer schema's 8-byte CRC-64-AVRO fingerprint (little-endian)
+ the Avro binary body. The fingerprint is looked up among every schema version shipped in
``runstream/contract/avro/``, and the body is read with today's version of the same schema (Avro schema
resolution), so old data stays readable forever.

Messages framed by a Confluent Schema Registry (``00`` + 4-byte schema id + body) are read
too when a registry client is given: the schema it returns is matched to ours by name.
"""

from __future__ import annotations

import io
import json
import struct
from typing import Any, Protocol

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from runstream.contract import versions
from runstream.contract.exceptions import DecodeError, EncodeError

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
_HEADER = len(SINGLE_OBJECT_MAGIC) + 8


class RegistryClient(Protocol):
    """What the codec needs of a schema registry (confluent-kafka's client fits)."""

    def get_schema(self, schema_id: int) -> Any:
        """Return the registered schema with ``schema_id`` (an object with ``schema_str``)."""
        ...


class Codec:
    """Encode and decode Runstream messages. Thread-safe; build once and share.

    Args:
        registry: a Schema Registry client, needed only to read Confluent-framed messages.
    """

    def __init__(self, registry: RegistryClient | None = None) -> None:
        self._registry = registry
        self._confluent: dict[int, tuple[str, Any]] = {}

    def encode(self, name: str, record: Any) -> bytes:
        """Encode ``record`` with today's version of schema ``name``.

        Raises:
            ContractError: no schema is named ``name``.
            EncodeError: the record does not fit the schema (the message says where).
        """
        schema = versions.latest(name)
        buffer = io.BytesIO()
        buffer.write(SINGLE_OBJECT_MAGIC)
        buffer.write(schema.fingerprint)
        try:
            schemaless_writer(buffer, schema.parsed, record)
        except (ValueError, TypeError, KeyError, AttributeError, struct.error) as error:
            raise EncodeError(f"record does not fit schema {name!r}: {error}") from error
        return buffer.getvalue()

    def decode(self, data: bytes | None) -> tuple[str, Any]:
        """Decode a message into (schema name, record in today's version of that schema).

        Unions of records decode as ``(full record name, record)`` tuples, the form
        :meth:`encode` accepts too.

        Raises:
            DecodeError: the message has no value (``empty``), the framing is unknown, the
                fingerprint names no known schema, or the body is truncated or malformed
                (``.reason`` says which).
        """
        if not data:
            raise DecodeError("message has no value (a null or empty Kafka value)", "empty")
        if data[:2] == SINGLE_OBJECT_MAGIC:
            if len(data) < _HEADER:
                raise DecodeError(
                    f"message of {len(data)} bytes is shorter than its header", "truncated"
                )
            writer = versions.by_fingerprint().get(bytes(data[2:_HEADER]))
            if writer is None:
                raise DecodeError(
                    f"unknown schema fingerprint {bytes(data[2:_HEADER]).hex()}: written by a newer "
                    "Runstream, or not a Runstream message",
                    "fingerprint",
                )
            reader = versions.latest(writer.name)
            body = memoryview(data)[_HEADER:]
            return writer.name, _read(
                body, writer.parsed, None if reader is writer else reader.parsed
            )
        if data[:1] == CONFLUENT_MAGIC and len(data) >= 5:
            name, writer_schema = self._confluent_schema(struct.unpack(">I", data[1:5])[0])
            reader = versions.latest(name)
            return name, _read(memoryview(data)[5:], writer_schema, reader.parsed)
        raise DecodeError(
            f"not a Runstream message: starts with {bytes(data[:4]).hex() or 'nothing'}, expected "
            "c301 (Avro single-object) or 00 (Confluent Schema Registry)",
            "framing",
        )

    def _confluent_schema(self, schema_id: int) -> tuple[str, Any]:
        cached = self._confluent.get(schema_id)
        if cached is not None:
            return cached
        if self._registry is None:
            raise DecodeError(
                f"message framed by a Schema Registry (schema id {schema_id}) but no registry is "
                "configured",
                "registry",
            )
        raw = json.loads(self._registry.get_schema(schema_id).schema_str)
        full_name = f"{raw.get('namespace', '')}.{raw['name']}".lstrip(".")
        for version in versions.all_versions():
            if f"{version.raw.get('namespace', '')}.{version.raw['name']}" == full_name:
                entry = (version.name, parse_schema(raw))  # marked parsed: read as is
                self._confluent[schema_id] = entry
                return entry
        raise DecodeError(
            f"registry schema {schema_id} ({full_name}) is not a Runstream schema", "registry"
        )


def _read(body: memoryview, writer: Any, reader: Any) -> Any:
    stream = io.BytesIO(body)
    try:
        record = schemaless_reader(stream, writer, reader, return_record_name=True)
    except Exception as error:  # fastavro raises many types on malformed input
        if isinstance(error, EOFError) or stream.tell() >= len(body):
            raise DecodeError("message body is truncated", "truncated") from error
        raise DecodeError(f"message body is malformed: {error!r}", "body") from error
    if stream.tell() != len(body):
        raise DecodeError(
            f"message body has {len(body) - stream.tell()} bytes after the record", "body"
        )
    return record
