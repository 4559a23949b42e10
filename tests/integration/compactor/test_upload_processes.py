"""PUTs from helper processes, against the local S3 server: what lands, how failures come
back through the store's rules, and that helpers never outlive their worker."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from runstream.compactor.exceptions import StoreAccessError
from runstream.compactor.store import RetryPolicy, Store
from runstream.compactor.uploads import UploadProcesses
from runstream.core.filesystem import open_store
from runstream.core.settings import Settings
from tests.conftest import KAFKA
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_helpers_store_what_the_store_writes(s3_settings: Settings) -> None:
    fs, root = open_store(s3_settings)
    with UploadProcesses(s3_settings, processes=2) as uploads:
        store = Store(fs, root, uploads=uploads)
        payloads = {f"{root}/metrics/run_id=r/f{i}.bin": os.urandom(20_000 + i) for i in range(6)}
        for path, data in payloads.items():
            store.write(path, data)
    assert {path: bytes(fs.cat_file(path)) for path in payloads} == payloads


def test_helpers_start_before_the_first_put(s3_settings: Settings) -> None:
    """A start takes about a second: the worker's first file must not wait for it."""
    before = {p.pid for p in multiprocessing.active_children()}
    with UploadProcesses(s3_settings, processes=2):
        started = lambda: [  # noqa: E731
            p for p in multiprocessing.active_children() if p.pid not in before and p.is_alive()
        ]
        wait_for(lambda: len(started()) == 2, 10, "two helpers started without a PUT", 0.1)


def test_refused_credentials_in_a_helper_raise_store_access_error(s3_settings: Settings) -> None:
    wrong = replace(s3_settings, storage_options={"key": "runstream", "secret": "not-the-secret"})
    fs, root = open_store(wrong)
    with UploadProcesses(wrong, processes=1) as uploads:
        store = Store(fs, root, uploads=uploads)
        started = time.monotonic()
        with pytest.raises(StoreAccessError, match="AWS_ACCESS_KEY_ID"):
            store.write(f"{root}/probe.bin", b"x")
    assert time.monotonic() - started < 30  # at once (the helper's start included)


def test_a_killed_helper_is_replaced_and_the_write_retried(s3_settings: Settings) -> None:
    fs, root = open_store(s3_settings)
    with UploadProcesses(s3_settings, processes=1) as uploads:
        store = Store(fs, root, retry=RetryPolicy(initial_s=0.05, max_s=0.2), uploads=uploads)
        store.write(f"{root}/first.bin", b"1")  # the helper is up
        helpers = [p for p in multiprocessing.active_children() if p.is_alive()]
        assert helpers, "no helper process found"
        for helper in helpers:
            assert helper.pid is not None
            os.kill(helper.pid, signal.SIGKILL)
            helper.join(10)
        store.write(f"{root}/second.bin", b"2")
    assert bytes(fs.cat_file(f"{root}/second.bin")) == b"2"


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.parametrize(
    "when", ["after their first PUT", "while they start"], ids=["started", "starting"]
)
def test_helpers_exit_when_their_worker_is_killed(
    s3_settings: Settings, tmp_path: Path, when: str
) -> None:
    script = tmp_path / "worker.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import threading, time
            from runstream.compactor.uploads import UploadProcesses
            from runstream.core.filesystem import open_store
            from runstream.core.settings import Settings

            if __name__ == "__main__":
                settings = Settings.resolve(
                    {"kafka://" + KAFKA!r}, {s3_settings.store!r},
                    s3_endpoint={s3_settings.s3_endpoint!r}, environ={{}},
                )
                fs, root = open_store(settings)
                uploads = UploadProcesses(settings, processes=2)
                put = lambda: uploads.put(root + "/probe.bin", b"x")
                if {when == "while they start"!r}:
                    threading.Thread(target=put, daemon=True).start()
                else:
                    put()
                    put()
                print("go", flush=True)
                time.sleep(600)
            """
        )
    )
    worker = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    assert worker.stdout.readline() == "go\n"
    time.sleep(0.3)  # "starting": spawned, still importing (a start takes about a second)
    helpers = children_of(worker.pid)
    assert helpers and all(alive(pid) for pid in helpers), "no helper process found"
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    wait_for(lambda: not any(alive(pid) for pid in helpers), 20, "helpers outliving their worker")
