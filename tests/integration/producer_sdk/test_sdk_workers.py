"""Four worker processes log to one run id: every event arrives exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from runstream.contract import Heartbeat, LogLine, MetricLogged, ParamLogged, RunEnded, RunStarted
from runstream.core.settings import Settings

from .conftest import REPO, topic_events

WORKERS = 4
POINTS = 20_000


@pytest.mark.integration
def test_four_workers_one_run_every_event_once(sdk_settings: Settings, tmp_path: Path) -> None:
    run_id = f"ddp-{sdk_settings.topic_prefix}"
    bootstrap = sdk_settings.tracking_uri.bootstrap_servers
    workers = []
    for rank in range(WORKERS):
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank % 2),
            "WORLD_SIZE": str(WORKERS),
            "RUNSTREAM_SPILL_DIR": str(tmp_path / f"spill{rank}"),
        }
        command = [sys.executable, str(Path(__file__).with_name("sdk_worker.py"))]
        workers.append(
            subprocess.Popen(
                [*command, bootstrap, sdk_settings.topic_prefix, run_id, str(POINTS)], env=env
            )
        )
    assert [w.wait(180) for w in workers] == [0] * WORKERS

    events = topic_events(sdk_settings)
    identities = Counter(event.id for _, event in events)
    assert max(identities.values()) == 1, "an event identity arrived twice"
    by_producer: dict[str, list[int]] = defaultdict(list)
    producers = {}
    kinds: dict[int | None, Counter[str]] = defaultdict(Counter)
    for producer, event in events:
        by_producer[producer.id].append(event.id.sequence)
        producers[producer.id] = producer
        kinds[producer.rank][type(event.payload).__name__] += 1
    assert len(producers) == WORKERS
    assert sorted(p.rank for p in producers.values()) == list(range(WORKERS))
    assert {p.world_size for p in producers.values()} == {WORKERS}
    assert len({(p.host, p.pid) for p in producers.values()}) == WORKERS
    for producer_id, sequences in by_producer.items():
        beats = kinds[producers[producer_id].rank].pop(Heartbeat.__name__, 0)
        assert beats >= 1  # the first goes with RunStarted; more every 30 s while open
        # RunStarted and the one with the code version, ParamLogged, LogLine, RunEnded, beats
        expected = POINTS + 5 + beats
        assert sorted(sequences) == list(range(expected))  # no gap, no duplicate
    for rank in range(WORKERS):
        assert kinds[rank] == Counter(
            {
                MetricLogged.__name__: POINTS,
                RunStarted.__name__: 2,
                ParamLogged.__name__: 1,
                LogLine.__name__: 1,
                RunEnded.__name__: 1,
            }
        )
