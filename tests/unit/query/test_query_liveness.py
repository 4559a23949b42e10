"""The query layer shows a run whose heartbeats stopped as CRASHED once the lease passes (in
get_run, search_runs and the SQL views alike), and RUNNING again when it logs again."""

from __future__ import annotations

import time
from pathlib import Path

from runstream.core.settings import Settings
from runstream.query import QueryEngine
from runstream.tracking import Client

LEASE = 1.0


def wait_for_status(engine: QueryEngine, run_id: str, status: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    seen = engine.get_run(run_id).status
    while seen != status and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = engine.get_run(run_id).status
    return str(seen)


def test_a_silent_run_is_crashed_after_the_lease_and_running_when_it_logs_again(
    tmp_path: Path,
) -> None:
    settings = Settings.resolve(
        f"file://{tmp_path / 'tracking'}", run_lease=LEASE, heartbeat_interval=0.1, environ={}
    )
    client = Client(settings=settings, spill_dir=tmp_path / "spill")
    try:
        run = client.start_run(run_id="live-1", capture_code=False)
        ended = client.start_run(run_id="live-2", capture_code=False)
        ended.end("FINISHED")
        quiet = client.start_run(run_id="live-3", capture_code=False, heartbeat=False)
        client.flush()
        with QueryEngine.from_settings(settings) as engine:
            time.sleep(LEASE * 2)
            client.flush()
            assert engine.get_run("live-1").status == "RUNNING"  # still beating
            client.heartbeats.close()  # the beats stop, as when the process is killed
            silent_since = time.monotonic()
            assert wait_for_status(engine, "live-1", "CRASHED") == "CRASHED"
            assert time.monotonic() - silent_since >= LEASE * 0.9
            assert [r.run_id for r in engine.search_runs("status = 'CRASHED'")] == ["live-1"]
            rows = engine.views().execute("SELECT run_id, status FROM runs ORDER BY 1").fetchall()
            assert rows == [("live-1", "CRASHED"), ("live-2", "FINISHED"), ("live-3", "RUNNING")]
            assert quiet.status == "RUNNING"  # no heartbeats: never judged
            run.log_param("resumed", 1)
            client.flush()
            assert engine.get_run("live-1").status == "RUNNING"
            assert engine.search_runs("status = 'CRASHED'") == []
            assert wait_for_status(engine, "live-1", "CRASHED") == "CRASHED"
    finally:
        client.close(5.0)
