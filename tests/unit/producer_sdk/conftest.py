"""Fixtures of the producer SDK's unit tests: clients on a fresh local log (no servers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runstream.contract import Codec, LogicalEvent, decode_batch
from runstream.core.locallog import read_log
from runstream.tracking import Client


@pytest.fixture
def local_client(tmp_path: Path) -> Iterator[Client]:
    """A client writing to a local log under this test's tmp folder."""
    client = Client(f"file://{tmp_path / 'tracking'}", spill_dir=tmp_path / "spill")
    yield client
    client.close(5.0)


def local_events(client: Client) -> list[LogicalEvent]:
    """Every event of the client's local log, after a flush, in log order."""
    client.flush(10.0)
    codec = Codec()
    folder = client.settings.tracking_uri.path / "events"
    return [
        event
        for record in read_log(folder)
        for event in decode_batch(codec, record.value).logical_events()
    ]


def payloads(client: Client, kind: type) -> list:  # type: ignore[type-arg]
    """The payloads of one type in the client's local log."""
    return [e.payload for e in local_events(client) if isinstance(e.payload, kind)]
