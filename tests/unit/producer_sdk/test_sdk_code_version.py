"""``start_run`` does not wait for the code version (git runs on the client's own thread);
the run still gets it, through a second RunStarted with the run's start time that changes
nothing but the source registers, even when it arrives after the run ended."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from runstream.contract.codec import Codec
from runstream.contract.events import decode_batch
from runstream.contract.state import RunState, fold
from runstream.core.locallog import read_log
from runstream.core.logsource import events_folder
from runstream.core.settings import Settings
from runstream.tracking import Client
from runstream.tracking.code_probe import CodeProbe
from runstream.tracking.environment import CodeVersion

CODE = CodeVersion(
    source_file="/src/train.py",
    command="python train.py --lr 3e-3",
    git_commit="0123456789abcdef0123456789abcdef01234567",
    git_dirty=True,
    python_version="3.11.7",
    packages={"torch": "2.9.0"},
)


def replay(settings: Settings) -> dict[str, RunState]:
    """The reducer's fold of the local event log, read here with the contract alone."""
    codec = Codec()
    return fold(decode_batch(codec, record.value) for record in read_log(events_folder(settings)))


def test_start_run_returns_before_the_code_version_is_captured(tmp_path: Path) -> None:
    settings = Settings.resolve(f"file://{tmp_path / 'log'}", environ={})
    client = Client(settings=settings, spill_dir=tmp_path / "spill")
    release = threading.Event()
    captures: list[str] = []

    def slow_capture() -> CodeVersion:  # git on a machine where many processes start at once
        captures.append(threading.current_thread().name)
        assert release.wait(10.0)
        return CODE

    client._code = CodeProbe(client.record, capture=slow_capture)
    try:
        began = time.monotonic()
        run = client.start_run("ranked", "sweep", run_id="cv-1", tags={"team": "a"})
        client.start_run(run_id="cv-2")
        took = time.monotonic() - began
        run.log_metric("loss", 0.5, step=1)
        run.end("FINISHED")  # ends before its code version is known
        assert took < 1.0, took  # the capture is blocked: waiting for it would take 10 s
        release.set()
        client.flush(10.0)
        assert captures and "runstream-code-version" in captures
        states = replay(settings)
        state = states["cv-1"]
        assert state.status_value == "FINISHED"
        assert state.name is not None and state.name.value == "ranked"
        assert state.collection is not None and state.collection.value == "sweep"
        assert state.tags_dict() == {"team": "a"}
        source = state.source_dict()
        assert source["git_commit"] == CODE.git_commit
        assert source["git_dirty"] == "true"
        assert source["command"] == CODE.command
        assert source["source_file"] == CODE.source_file
        assert states["cv-2"].source_dict()["git_commit"] == CODE.git_commit
        assert states["cv-2"].status_value == "RUNNING"
        # the second RunStarted has the run's start time: the start time did not move
        assert state.start_time_us is not None and state.start_time_us <= state.end_time_us
        assert len(captures) <= 2  # runs started during a capture share the next one
    finally:
        release.set()
        client.close(5.0)


def test_a_flush_waits_for_the_code_version_and_says_when_it_is_late(tmp_path: Path) -> None:
    settings = Settings.resolve(f"file://{tmp_path / 'log'}", environ={})
    client = Client(settings=settings, spill_dir=tmp_path / "spill")
    release = threading.Event()

    def stuck() -> CodeVersion:
        assert release.wait(10.0)
        return CODE

    client._code = CodeProbe(client.record, capture=stuck)
    try:
        client.start_run(run_id="cv-late")
        try:
            client.flush(0.3)
        except Exception as error:
            assert "code version" in str(error) and "1 events" in str(error)
        else:
            raise AssertionError("the flush returned before the code version was recorded")
        release.set()
        client.flush(10.0)
        source = replay(settings)["cv-late"].source_dict()
        assert source["git_commit"] == CODE.git_commit
    finally:
        release.set()
        client.close(5.0)


def test_the_real_capture_records_this_process(tmp_path: Path) -> None:
    settings = Settings.resolve(f"file://{tmp_path / 'log'}", environ={})
    client = Client(settings=settings, spill_dir=str(tmp_path / "spill"))  # a str works too
    try:
        client.start_run(run_id="cv-real").end()
        client.flush(30.0)
        state = replay(settings)["cv-real"]
        assert state.status_value == "FINISHED"
        assert state.source_dict()["python_version"].count(".") == 2
        assert "pytest" in state.source_dict()["command"]
    finally:
        client.close(5.0)
