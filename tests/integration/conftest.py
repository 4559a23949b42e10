"""Fixtures shared by the integration tests: a private S3 server to stop and restart."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.5) -> float:
    """Seconds until ``condition()`` held; fail the test after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what}: not within {timeout:.0f}s")
        time.sleep(every)
    return time.monotonic() - start


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class PrivateS3:
    """A SeaweedFS of this test's own (``weed mini``), to stop and restart at will."""

    folder: Path
    ports: tuple[int, int, int, int]
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports[3]}"

    def start(self) -> None:
        master, volume, filer, s3 = self.ports
        log = open(self.folder / "weed.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                str(REPO / ".venv" / "bin" / "weed"),
                "mini",
                f"-dir={self.folder / 'data'}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-master.port={master}",
                f"-volume.port={volume}",
                f"-filer.port={filer}",
                f"-s3.port={s3}",
                "-bucket=runstream",
                "-admin.ui=false",
                "-webdav=false",
            ],
            cwd=self.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "AWS_ACCESS_KEY_ID": "runstream",
                "AWS_SECRET_ACCESS_KEY": "runstream-secret",
            },
        )
        log.close()
        wait_for(self._answers, 90, f"private S3 on {self.endpoint}", every=0.3)

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            pytest.fail(f"private weed exited: {(self.folder / 'weed.log').read_text()[-2000:]}")
        try:
            urllib.request.urlopen(
                urllib.request.Request(f"{self.endpoint}/runstream", method="HEAD"), timeout=2
            )
        except urllib.error.HTTPError as error:
            return error.code in (403, 200)
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


@pytest.fixture
def private_s3(tmp_path: Path) -> Iterator[PrivateS3]:
    """A private S3 server on free ports (never the shared one), stopped at teardown."""
    for _ in range(50):
        base = random.randrange(20_000, 25_000, 10)
        ports = (base, base + 1, base + 2, base + 3)
        if all(_free(p) and _free(p + 10_000) for p in ports):
            break
    else:
        pytest.fail("no free ports for a private S3 server")
    folder = tmp_path / "weed"
    (folder / "data").mkdir(parents=True)
    server = PrivateS3(folder, ports)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)
