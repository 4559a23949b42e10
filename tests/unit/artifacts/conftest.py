"""Fixtures of the artifact tests on the embedded default (file:// tracking, local store)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from runstream.contract import Codec, EventBatch, decode_batch
from runstream.core.locallog import read_log
from runstream.core.logsource import events_folder
from runstream.core.settings import Settings
from runstream.tracking import Client


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded settings under this test's tmp folder (store at ``tracking/store``)."""
    return Settings.resolve(f"file://{tmp_path / 'tracking'}", environ={})


@pytest.fixture
def client(settings: Settings, tmp_path: Path) -> Iterator[Client]:
    """A client of the embedded settings."""
    client = Client(settings=settings, spill_dir=tmp_path / "spill")
    yield client
    client.close(10.0)


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a local file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def log_batches(settings: Settings) -> list[EventBatch]:
    """Every batch of the embedded log, in log order."""
    codec = Codec()
    return [decode_batch(codec, r.value) for r in read_log(events_folder(settings))]


def stored_objects(settings: Settings, run_id: str) -> list[Path]:
    """The artifact objects of a run in the local store."""
    folder = Path(settings.store) / "artifacts" / f"run_id={run_id}"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
