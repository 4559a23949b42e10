"""Run liveness in the embedded mode (file://): a trainer SIGKILLed with its run open is
CRASHED in `runstream runs` once the lease (3 s) passes, RUNNING again when a resumed
process logs to the same run id, FINISHED when that process exits normally; runs left open
by a process that returns, raises or calls sys.exit(3) end FINISHED, FAILED, FAILED and are
never CRASHED."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runstream.core.settings import Settings
from runstream.query import QueryEngine
from tests.liveness import (
    ENDINGS,
    LEASE,
    finish,
    liveness_env,
    run_to_the_end,
    start_trainer,
    wait_until,
)

pytestmark = pytest.mark.integration


def cli_status(env: dict[str, str], run_id: str) -> str | None:
    """The run's status as `runstream runs --output json` prints it (a separate process)."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "runstream"), "runs", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = {row["run_id"]: row for row in json.loads(done.stdout)}
    return rows[run_id]["status"] if run_id in rows else None


def test_a_killed_trainer_is_crashed_then_running_when_resumed_then_finished(
    tmp_path: Path,
) -> None:
    uri = f"file://{tmp_path / 'tracking'}"
    env = liveness_env({"RUNSTREAM_TRACKING_URI": uri})
    trainer = start_trainer(env, "live-embedded", 1)
    assert cli_status(env, "live-embedded") == "RUNNING"
    trainer.send_signal(signal.SIGKILL)
    assert trainer.wait(30) == -signal.SIGKILL
    seen, waited = wait_until(lambda: cli_status(env, "live-embedded"), "CRASHED", 60)
    assert seen == "CRASHED"
    assert waited >= LEASE / 2  # the last heartbeat came at most 0.75 s before the kill
    # The query engine (same contract function, lease from the settings) agrees; with the
    # default lease of 120 s the run is still RUNNING.
    settings = Settings.resolve(uri, run_lease=LEASE, environ={})
    with QueryEngine.from_settings(settings) as engine:
        assert [r.run_id for r in engine.search_runs("status = 'CRASHED'")] == ["live-embedded"]
    with QueryEngine.from_settings(Settings.resolve(uri, environ={})) as engine:
        assert engine.get_run("live-embedded").status == "RUNNING"

    resumed = start_trainer(env, "live-embedded", 2)
    assert cli_status(env, "live-embedded") == "RUNNING"
    assert finish(resumed) == 0
    assert cli_status(env, "live-embedded") == "FINISHED"


def test_runs_left_open_end_finished_or_failed_and_are_never_crashed(tmp_path: Path) -> None:
    uri = f"file://{tmp_path / 'tracking'}"
    env = liveness_env({"RUNSTREAM_TRACKING_URI": uri})
    for ending, status in ENDINGS.values():
        assert (run_to_the_end(env, f"end-{len(ending)}", ending) == 0) == (status == "FINISHED")
    time.sleep(LEASE * 1.5)  # past the lease: an ended run stays ended
    expected = {f"end-{len(ending)}": status for ending, status in ENDINGS.values()}
    settings = Settings.resolve(uri, run_lease=LEASE, environ={})
    with QueryEngine.from_settings(settings) as engine:
        assert {r.run_id: r.status for r in engine.search_runs()} == expected
    assert {run_id: cli_status(env, run_id) for run_id in expected} == expected
