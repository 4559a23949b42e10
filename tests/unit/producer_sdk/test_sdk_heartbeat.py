"""Heartbeats: sent from a thread of their own while a run is open, never after it ends;
the first goes with RunStarted; a forked child does not beat for its parent's runs."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

from runstream.contract import Heartbeat, RunStarted
from runstream.core.settings import Settings
from runstream.tracking import Client

from .conftest import local_events, payloads

INTERVAL = 0.05


def beating_client(tmp_path: Path) -> Client:
    settings = Settings.resolve(
        f"file://{tmp_path / 'tracking'}", heartbeat_interval=INTERVAL, environ={}
    )
    return Client(settings=settings, spill_dir=tmp_path / "spill")


def wait_for_beats(client: Client, count: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    found = len(payloads(client, Heartbeat))
    while found < count and time.monotonic() < deadline:
        time.sleep(INTERVAL)
        found = len(payloads(client, Heartbeat))
    return found


def test_an_open_run_beats_without_the_caller_and_stops_when_it_ends(tmp_path: Path) -> None:
    client = beating_client(tmp_path)
    try:
        run = client.start_run(run_id="beat-1", capture_code=False)
        events = local_events(client)
        assert [type(e.payload) for e in events[:2]] == [RunStarted, Heartbeat]
        assert events[1].payload == Heartbeat(int(INTERVAL * 1000))
        assert wait_for_beats(client, 5) >= 5  # the caller only sleeps meanwhile
        assert "runstream-heartbeat" in {t.name for t in threading.enumerate()}
        run.end()
        after_end = len(payloads(client, Heartbeat))
        time.sleep(INTERVAL * 6)
        assert len(payloads(client, Heartbeat)) == after_end
        deadline = time.monotonic() + 5
        while client.heartbeats._thread is not None and time.monotonic() < deadline:
            time.sleep(INTERVAL)
        assert client.heartbeats._thread is None  # no open run: no thread
    finally:
        client.close(5.0)


def test_close_stops_the_beats_of_runs_left_open(tmp_path: Path) -> None:
    client = beating_client(tmp_path)
    client.start_run(run_id="beat-2", capture_code=False)
    assert wait_for_beats(client, 2) >= 2
    client.heartbeats.close()
    before = len(payloads(client, Heartbeat))
    time.sleep(INTERVAL * 6)
    assert len(payloads(client, Heartbeat)) == before
    client.close(5.0)


def test_a_run_started_without_heartbeat_sends_none(tmp_path: Path) -> None:
    client = beating_client(tmp_path)
    try:
        client.start_run(run_id="quiet-1", capture_code=False, heartbeat=False)
        time.sleep(INTERVAL * 5)
        assert payloads(client, Heartbeat) == []
    finally:
        client.close(5.0)


def _child_runs(client: Client, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out.put(len(client.heartbeats._runs))


def test_a_forked_child_does_not_beat_for_its_parents_runs(tmp_path: Path) -> None:
    client = beating_client(tmp_path)
    try:
        client.start_run(run_id="beat-3", capture_code=False)
        context = multiprocessing.get_context("fork")
        out = context.Queue()
        child = context.Process(target=_child_runs, args=(client, out))
        child.start()
        assert out.get(timeout=30) == 0
        child.join(30)
        assert child.exitcode == 0
        assert len(client.heartbeats._runs) == 1
    finally:
        client.close(5.0)
