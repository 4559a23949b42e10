"""A run the process started and left open ends with the process: FINISHED at a normal exit,
FAILED after an unhandled exception or a non-zero ``sys.exit``; an explicit end stays.

Each script runs in its own interpreter on the embedded (file://) log; the statuses are read
from the log files with fastavro, then decoded from the batch bytes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import fastavro
import pytest

from runstream.contract import Codec, RunEnded, decode_batch

SCRIPTS = {
    "returns": ("", "FINISHED"),
    "raises": ("raise RuntimeError('training diverged')", "FAILED"),
    "sys.exit(3)": ("import sys; sys.exit(3)", "FAILED"),
    "sys.exit(0)": ("import sys; sys.exit(0)", "FINISHED"),
    "sys.exit('message')": ("import sys; sys.exit('out of data')", "FAILED"),
    "ends KILLED itself": ("tracking.end_run('KILLED')", "KILLED"),
}


def ended_statuses(folder: Path) -> dict[str, list[str]]:
    """Run id -> the statuses of its RunEnded events, from every log file under ``folder``."""
    codec = Codec()
    found: dict[str, list[str]] = {}
    for path in sorted(folder.rglob("*.avro")):
        with path.open("rb") as handle:
            for record in fastavro.reader(handle):
                batch = decode_batch(codec, record["value"])  # type: ignore[call-overload,index]
                for event in batch.events:
                    if isinstance(event.payload, RunEnded):
                        found.setdefault(batch.run_id, []).append(event.payload.status)
    return found


@pytest.mark.parametrize(("ending", "status"), SCRIPTS.values(), ids=list(SCRIPTS))
def test_a_run_left_open_ends_with_the_process(tmp_path: Path, ending: str, status: str) -> None:
    script = textwrap.dedent(
        f"""
        from runstream import tracking
        tracking.set_tracking_uri("file://{tmp_path / "log"}")
        run = tracking.start_run(run_id="the-run")
        run.log_metric("loss", 0.5, step=1)
        {ending}
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=120, check=False
    )
    assert (done.returncode == 0) == (status != "FAILED"), done.stderr.decode()
    assert ended_statuses(tmp_path / "log") == {"the-run": [status]}


def test_a_run_attached_to_is_not_ended_by_this_process(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        from runstream import tracking
        client = tracking.Client("file://{tmp_path / "log"}")
        client.attach("someone-elses").log_metric("loss", 0.5, step=1)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    assert ended_statuses(tmp_path / "log") == {}
