"""An embedded dataset (file:// tracking URI, no server) logged with the real SDK and partly
compacted by the real embedded pipeline, and the UI app over it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from runstream.apps.embedded import process
from runstream.core.settings import Settings
from runstream.tracking import Client
from runstream.ui import Backend, create_app


def spike(step: int) -> float:
    """A smooth curve with one spike at step 333."""
    return math.cos(step / 30.0) + (50.0 if step == 333 else 0.0)


@pytest.fixture
def ui_settings(tmp_path: Path) -> Iterator[Settings]:
    """Run "ui-1" (running): 1,000 loss points (600 compacted, 400 only in the log), a NaN
    and two log lines; run "ui-2" (finished): 100 loss points."""
    settings = Settings.resolve(f"file://{tmp_path / 'tracking'}", environ={})
    client = Client(settings=settings, spill_dir=tmp_path / "spill")
    run = client.start_run("first", "exp", run_id="ui-1", tags={"team": "a"}, capture_code=False)
    run.log_param("lr", "0.5")
    for step in range(600):
        run.log_metric("loss", spike(step), step=step)
    run.flush()
    process(settings)
    for step in range(600, 1000):
        run.log_metric("loss", spike(step), step=step)
    run.log_metric("odd", math.nan, step=0)
    run.log("warming up", level="info")
    run.log("gradient spike", level="warn", metadata={"step": "333"})
    other = client.start_run("second", "exp", run_id="ui-2", capture_code=False)
    other.log_param("lr", "0.1")
    for step in range(0, 1000, 10):
        other.log_metric("loss", 1.0 / (step + 1), step=step)
    other.end("FINISHED")
    client.flush()
    yield settings
    client.close()


@pytest.fixture
def client(ui_settings: Settings) -> Iterator[TestClient]:
    """A test client of the UI app (Host 127.0.0.1)."""
    app = create_app(Backend.from_settings(ui_settings))
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client
