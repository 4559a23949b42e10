"""Loud errors with exact counts when Kafka does not acknowledge: a spill folder that cannot
be written makes flush() raise naming the folder and the events at risk, and close() return
them; with a working folder FlushError counts each unacknowledged event once.

No server: the tracking URI names a port where nothing listens, so every delivery times out
(a real librdkafka producer, a real folder)."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import pytest

from runstream.core.settings import Settings
from runstream.tracking import Client
from runstream.tracking.exceptions import FlushError, SinkError

POINTS = 1_000
EVENTS = POINTS + 2  # the points, the RunStarted and its first Heartbeat


def dead_broker() -> str:
    """host:port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def client_of(spill_dir: Path) -> Client:
    settings = Settings.resolve(
        f"kafka://{dead_broker()}",
        kafka={"message.timeout.ms": 300, "socket.connection.setup.timeout.ms": 1000},
        environ={},
    )
    return Client(settings=settings, spill_dir=spill_dir)


def log_points(client: Client) -> None:
    """Log POINTS points to run "r". Where the folder cannot be written, the background
    thread may meet that while the loop still runs: a call then raises SinkError, its point
    queued all the same (so the counts stay exact)."""
    run = client.start_run(run_id="r", capture_code=False)
    for step in range(POINTS):
        with contextlib.suppress(SinkError):
            run.log_metric("loss", step * 0.5, step=step)


def test_an_unwritable_spill_folder_makes_flush_raise_with_the_folder_and_the_count(
    tmp_path: Path,
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    spill_dir = tmp_path / "a-file" / "spill"  # cannot be created, even by root
    client = client_of(spill_dir)
    log_points(client)
    with pytest.raises(SinkError) as caught:
        client.flush(timeout=3.0)
    assert f"{EVENTS} events are at risk" in str(caught.value)
    assert str(spill_dir) in str(caught.value)
    with pytest.raises(SinkError, match=f"{EVENTS} events are at risk"):
        client.flush(timeout=0.5)  # every flush, until the process ends
    assert client.close(timeout=0.5) == EVENTS


def test_with_a_working_spill_folder_flush_error_counts_each_event_once(tmp_path: Path) -> None:
    client = client_of(tmp_path / "spill")
    log_points(client)
    with pytest.raises(FlushError) as caught:
        client.flush(timeout=3.0)  # delivered nowhere, spilled, resent, spilled again
    assert caught.value.unacknowledged == EVENTS
    assert client.close(timeout=0.5) == EVENTS
    assert list((tmp_path / "spill").glob("*.avro")), "the events stay spilled"
