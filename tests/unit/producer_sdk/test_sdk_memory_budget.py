"""The memory budget of buffered events (issue 18): batches waiting for Kafka hold at most
``max_buffered_bytes`` in memory; past it they wait in the journal (on disk), and the counts
stay exact. No server: kafka:// names a port where nothing listens and messages do not time
out during the test, so every batch produced stays buffered in the producer."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastavro import block_reader

from runstream.core.settings import Settings
from runstream.tracking import Client
from runstream.tracking.exceptions import FlushError
from runstream.tracking.sinks import KafkaSink

from .test_sdk_spill_errors import dead_broker

BUDGET = 1 << 20
POINTS = 300_000


def records_in(folder: Path) -> int:
    """Batches in the journal files of ``folder``, read with fastavro."""
    count = 0
    for path in folder.glob("*.avro"):
        with path.open("rb") as file:
            count += sum(block.num_records for block in block_reader(file))
    return count


def test_buffered_batches_stay_within_the_budget_the_rest_waits_in_the_journal(
    tmp_path: Path,
) -> None:
    settings = Settings.resolve(
        f"kafka://{dead_broker()}", kafka={"message.timeout.ms": 120_000}, environ={}
    )
    journal = tmp_path / "journal"
    client = Client(settings=settings, spill_dir=journal, max_buffered_bytes=BUDGET)
    sink = client.batcher.sink
    assert isinstance(sink, KafkaSink)
    run = client.start_run(run_id="budget", capture_code=False)
    peak = 0
    for step in range(POINTS):
        run.log_metric("loss", step * 0.5, step)
        if step % 1_000 == 0:
            peak = max(peak, sink.buffered_bytes())
    with pytest.raises(FlushError) as caught:
        client.flush(timeout=1.0)
    peak = max(peak, sink.buffered_bytes())
    assert caught.value.unacknowledged == POINTS + 2  # each event once, RunStarted, Heartbeat
    assert 0 < peak <= BUDGET, f"{peak} bytes buffered, budget {BUDGET}"
    assert sink._unsent > POINTS // 2, "the batches past the budget are not in the journal"
    assert records_in(journal) > 0
    assert client.close(timeout=0.2) == POINTS + 2
