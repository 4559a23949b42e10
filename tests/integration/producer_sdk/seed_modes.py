"""Run a seed doc's example in a fresh context of a tracking mode set the documented way (the
environment): the embedded default (``file://`` in a tmp folder) or the shared Kafka with this
test's own topic prefix and S3 prefix."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from runstream import tracking
from runstream.core.settings import Settings

T = TypeVar("T")
MODES = ("file", "kafka")


@dataclass(frozen=True)
class Mode:
    """One tracking mode with its environment set; ``run`` runs an example in it."""

    name: str
    env: dict[str, str]

    def run(self, example: Callable[[], T]) -> T:
        """Run ``example`` in a fresh context, closing its client afterwards."""

        def body() -> T:
            try:
                return example()
            finally:
                tracking.get_client().close(30.0)

        return contextvars.copy_context().run(body)


def mode_env(
    name: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Mode:
    """Set the environment of mode ``name`` (``file`` or ``kafka``) for this test."""
    env = {"RUNSTREAM_SPILL_DIR": str(tmp_path / "spill")}
    if name == "file":
        env["RUNSTREAM_TRACKING_URI"] = f"file://{tmp_path / 'runstream-data'}"
    else:
        settings: Settings = request.getfixturevalue("sdk_settings")
        env |= {
            "RUNSTREAM_TRACKING_URI": str(settings.tracking_uri),
            "RUNSTREAM_STORE": settings.store,
            "RUNSTREAM_S3_ENDPOINT": settings.s3_endpoint or "",
            "RUNSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        }
    for variable in ("RUNSTREAM_NO_OP", "RUNSTREAM_STORE", "RUNSTREAM_TOPIC_PREFIX"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    return Mode(name, env)


def log_events(mode: Mode) -> list[tuple[Any, Any]]:
    """(producer, event) of every event the mode's log holds (Kafka topic or local files)."""
    from runstream.contract import Codec, decode_batch
    from runstream.core.locallog import read_log

    from .conftest import topic_events

    settings = Settings.resolve(environ=mode.env)
    if mode.name == "kafka":
        return topic_events(settings)
    folder = settings.tracking_uri.path / "events"
    if not folder.exists():
        return []
    codec = Codec()
    out = []
    for record in read_log(folder):
        batch = decode_batch(codec, record.value)
        out.extend((batch.producer, event) for event in batch.logical_events())
    return out
