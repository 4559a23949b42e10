"""Browser tests' fixtures: the UI served by uvicorn on a free loopback port (in a thread), a
headless Chromium from Debian's packages driven by Playwright, and a folder for screenshots.

Chromium must be at /usr/bin/chromium (``apt-get install -y chromium``); a missing browser
fails the tests, it never skips them."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from runstream.contract.layout import part_path, run_dir
from runstream.contract.parquet import COMPRESSION, METRIC_SCHEMA
from runstream.ui import Backend, create_app

CHROMIUM = os.environ.get("RUNSTREAM_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(os.environ.get("RUNSTREAM_TEST_SHOTS", "test-output/ui"))


class Served:
    """A UI app served on 127.0.0.1 in a background thread."""

    def __init__(self, backend: Backend) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(
            create_app(backend), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the UI server did not start within 20 s"
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop the server and wait for its thread."""
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def serve() -> Iterator[type[Served]]:
    """Start UI servers (``serve(backend)``); each is stopped after the test."""
    started: list[Served] = []

    class _Served(Served):
        def __init__(self, backend: Backend) -> None:
            super().__init__(backend)
            started.append(self)

    yield _Served
    for served in started:
        served.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium."""
    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} missing: apt-get install -y chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page (1400x900); JavaScript errors fail the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, errors


@pytest.fixture
def shots() -> Path:
    """Where screenshots go (test-output/ui unless RUNSTREAM_TEST_SHOTS says otherwise)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


def write_metric(fs: object, root: str, run_id: str, key: str, points: int) -> None:
    """``points`` steps of metric ``key`` at the store layout, in files of 1M rows, as the
    compactor's merged files; a spike of 100 at the middle step."""
    rng = np.random.default_rng(0)
    size = 1_000_000
    fs.makedirs(run_dir(root, run_id), exist_ok=True)  # type: ignore[attr-defined]
    for first in range(0, points, size):
        steps = np.arange(first, min(first + size, points), dtype=np.int64)
        n = len(steps)
        values = np.cos(steps / 1e5) + rng.normal(0, 0.05, n)
        values[steps == points // 2] = 100.0
        table = pa.table(
            {
                "key": pa.array([key] * n),
                "step": steps,
                "timestamp": steps + 1_700_000_000_000,
                "value": values,
                "producer_id": pa.array(["p" * 32] * n),
                "sequence": steps,
                "partition": pa.array(np.zeros(n, np.int64)),
                "offset": steps,
            },
            schema=METRIC_SCHEMA,
        )
        path = part_path(root, run_id, 0, first, first + n - 1)
        with fs.open(path, "wb") as file:  # type: ignore[attr-defined]
            pq.write_table(table, file, compression=COMPRESSION)
