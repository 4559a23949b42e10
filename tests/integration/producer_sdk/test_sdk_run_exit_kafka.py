"""On kafka://: a run left open ends with the process that started it (FINISHED at a normal
exit, FAILED after an unhandled exception or sys.exit(3)); the RunEnded is read back from
the topic with a plain consumer and decoded from its bytes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runstream.contract import Codec, RunEnded, decode_batch
from runstream.core.settings import Settings
from runstream.core.source import read_topic
from runstream.core.topics import Topics

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("ending", "status"),
    [("", "FINISHED"), ("raise RuntimeError('diverged')", "FAILED"), ("sys.exit(3)", "FAILED")],
    ids=["returns", "raises", "sys.exit(3)"],
)
def test_a_run_left_open_ends_with_the_process_on_kafka(
    sdk_settings: Settings, tmp_path: Path, ending: str, status: str
) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from runstream import tracking
        run = tracking.start_run(run_id="the-run")
        run.log_metric("loss", 0.5, step=1)
        {ending}
        """
    )
    env = {
        **os.environ,
        "RUNSTREAM_TRACKING_URI": str(sdk_settings.tracking_uri),
        "RUNSTREAM_TOPIC_PREFIX": sdk_settings.topic_prefix,
        "RUNSTREAM_SPILL_DIR": str(tmp_path / "spill"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=120, check=False, env=env
    )
    assert (done.returncode == 0) == (status == "FINISHED"), done.stderr.decode()
    codec = Codec()
    statuses = [
        event.payload.status
        for record in read_topic(sdk_settings, Topics(sdk_settings.topic_prefix).events)
        for event in decode_batch(codec, record.value).events
        if isinstance(event.payload, RunEnded)
    ]
    assert statuses == [status]
