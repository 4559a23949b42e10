"""Loud journal errors with exact counts (issue 16): a journal or local log folder that
cannot be written, or that is full, makes flush() and the next metric call raise a
SinkError naming the folder and the events at risk, and close() returns the exact count.

No server: kafka:// names a port where nothing listens (a real librdkafka producer). "Full"
is a real refused write: the logging process runs with RLIMIT_FSIZE set low and SIGXFSZ
ignored, so the kernel fails a write past the limit with EFBIG (a full disk without root or
a tmpfs mount); what reached the files is read back with fastavro.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastavro import block_reader

from runstream.contract import Codec, decode_batch
from runstream.core.settings import Settings
from runstream.tracking import Client
from runstream.tracking.exceptions import FlushError, SinkError

from .test_sdk_spill_errors import EVENTS, dead_broker, log_points

FULL_LOGGER = Path(__file__).with_name("full_disk_logger.py")


def events_in_files(folder: Path) -> int:
    """Events in the whole blocks of every log file of ``folder`` (a torn tail skipped)."""
    codec = Codec()
    count = 0
    for path in folder.glob("*.avro"):
        with path.open("rb") as file:
            try:
                for block in block_reader(file):
                    count += sum(len(decode_batch(codec, r["value"])) for r in block)
            except (ValueError, EOFError):
                pass  # a torn tail: the write that hit the limit
    return count


def at_risk(message: str) -> int:
    """The count of events at risk a SinkError reports."""
    found = re.search(r"(\d+) events are at risk", message)
    assert found, message
    return int(found.group(1))


def test_an_unwritable_local_log_folder_raises_at_flush_and_the_next_call(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    folder = tmp_path / "a-file" / "tracking"  # cannot be created, even by root
    client = Client(settings=Settings.resolve(f"file://{folder}", environ={}))
    log_points(client)
    with pytest.raises(SinkError) as caught:
        client.flush(timeout=3.0)
    assert f"{EVENTS} events are at risk" in str(caught.value)
    assert str(folder / "events") in str(caught.value)
    run = client.attach("r")
    with pytest.raises(SinkError, match=f"{EVENTS} events are at risk"):
        run.log_metric("loss", 1.0)  # the next call (this point is accepted, and at risk)
    assert client.close(timeout=0.5) == EVENTS + 1


def test_an_unwritable_journal_folder_makes_the_next_metric_call_raise(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    journal = tmp_path / "a-file" / "journal"
    settings = Settings.resolve(
        f"kafka://{dead_broker()}", kafka={"message.timeout.ms": 300}, environ={}
    )
    client = Client(settings=settings, spill_dir=journal)
    log_points(client)
    with pytest.raises(SinkError, match=f"{EVENTS} events are at risk") as caught:
        client.flush(timeout=3.0)
    assert str(journal) in str(caught.value)
    run = client.attach("r")
    with pytest.raises(SinkError, match=f"{EVENTS} events are at risk"):
        run.log_metric("loss", 1.0)
    with pytest.raises(SinkError, match="events are at risk"):
        run.log_metrics({"loss": 2.0})
    assert client.close(timeout=0.5) == EVENTS + 2


@pytest.mark.parametrize("scheme", ["file", "kafka"])
def test_a_full_journal_raises_with_the_exact_count(scheme: str, tmp_path: Path) -> None:
    points = 200_000
    folder = tmp_path / "tracking"
    spill = tmp_path / "journal"
    uri = f"file://{folder}" if scheme == "file" else f"kafka://{dead_broker()}"
    limit = 150_000  # bytes per file: one batch of 5,000 points fits, the next does not
    done = subprocess.run(
        [sys.executable, str(FULL_LOGGER), uri, str(spill), str(limit), str(points)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    total = report["accepted"] + 2  # and the RunStarted with its first Heartbeat
    assert "events are at risk" in report["call_error"], "no metric call raised"
    written = events_in_files(folder / "events" if scheme == "file" else spill)
    assert 0 < written < total, f"the limit did not bite: {written} of {total} written"
    assert "File too large" in report["error"], report["error"]
    assert str(folder / "events" if scheme == "file" else spill) in report["error"]
    assert at_risk(report["error"]) == total - written
    # file://: what is not in the log is lost; kafka://: nothing is acknowledged (no broker)
    # and the journaled part is kept for a resend
    assert report["closed"] == (total - written if scheme == "file" else total)


def test_without_the_journal_a_batch_in_flight_is_not_an_error(tmp_path: Path) -> None:
    settings = Settings.resolve(
        f"kafka://{dead_broker()}", kafka={"message.timeout.ms": 300}, journal=False, environ={}
    )
    client = Client(settings=settings, spill_dir=tmp_path / "spill")
    run = client.start_run(run_id="r", capture_code=False)
    for step in range(20_000):  # past the queue bound many times: no call raises
        run.log_metric("loss", 0.5, step)
    with pytest.raises(FlushError) as caught:  # unacknowledged, spilled: not at risk
        client.flush(timeout=2.0)
    assert caught.value.unacknowledged == 20_002  # and the RunStarted with its Heartbeat
    assert client.close(timeout=0.5) == 20_002
