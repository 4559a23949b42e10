"""Every version of every schema kept in ``runstream/contract/avro/``, found by name or fingerprint.

A file ``avro/<name>.v<N>.avsc`` is version N of schema ``<name>``. Versions are never
edited or removed once released: old data names its writer schema by fingerprint and must
always be readable. The highest version of a name is the one written today.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from runstream.contract.exceptions import ContractError

_FILE = re.compile(r"^(?P<name>[a-z_]+)\.v(?P<version>\d+)\.avsc$")


@dataclass(frozen=True)
class SchemaVersion:
    """One released version of one schema."""

    name: str
    version: int
    fingerprint: bytes  # CRC-64-AVRO of the parsing canonical form, little-endian, 8 bytes
    parsed: Any  # fastavro's parsed schema, marked parsed (readers and writers use it as is)
    raw: Any  # the JSON as written in the .avsc


def _load(name: str, version: int, text: str) -> SchemaVersion:
    raw = json.loads(text)
    # fastavro's schemaless_reader and schemaless_writer parse the schema they are given on
    # every call unless it carries the parsed marker (_write_hint): unmarked, the event batch
    # schema was parsed again for each message, most of the cost of a decode or an encode.
    parsed = parse_schema(raw)
    canonical = to_parsing_canonical_form(parse_schema(raw, _write_hint=False))
    # fastavro's hex is already the little-endian byte order the single-object spec stores
    # (CRC-64-AVRO of "null" is 0x63dd24e7cc258f8a; fastavro gives "8a8f25cce724dd63").
    return SchemaVersion(
        name, version, bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")), parsed, raw
    )


@cache
def all_versions() -> tuple[SchemaVersion, ...]:
    """Every schema version shipped in the package, sorted by (name, version)."""
    found: list[SchemaVersion] = []
    for entry in resources.files("runstream.contract").joinpath("avro").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(_load(match["name"], int(match["version"]), entry.read_text("utf-8")))
    return tuple(sorted(found, key=lambda s: (s.name, s.version)))


@cache
def by_fingerprint() -> dict[bytes, SchemaVersion]:
    """Map fingerprint -> schema version, over every version ever released."""
    return {s.fingerprint: s for s in all_versions()}


@cache
def latest(name: str) -> SchemaVersion:
    """The version of ``name`` written today.

    Raises:
        ContractError: no schema of that name is shipped.
    """
    versions = [s for s in all_versions() if s.name == name]
    if not versions:
        known = sorted({s.name for s in all_versions()})
        raise ContractError(f"no schema named {name!r}; known: {', '.join(known)}")
    return versions[-1]
