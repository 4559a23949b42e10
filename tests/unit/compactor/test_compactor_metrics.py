"""The compactor's metrics and health checks over a worker's counters, read back with
prometheus_client's own text parser."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from runstream.compactor.metrics import CompactorMetrics
from runstream.compactor.worker import Stats


def _samples(metrics: CompactorMetrics) -> dict[str, float]:
    text = generate_latest(metrics.registry).decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_counters_are_the_workers_stats() -> None:
    metrics = CompactorMetrics()
    assert "runstream_compactor_records_total" not in _samples(metrics)  # no worker yet
    worker = SimpleNamespace(
        stats=Stats(records=7, points=300, files=2, merges=1, skipped=1, commits=3),
        failed=None,
        assigned=frozenset({0, 1}),
    )
    metrics.watch(worker)
    metrics.observe_backlog(points=40, buffers=2, writes=1, assigned=2)
    samples = _samples(metrics)
    assert samples["runstream_compactor_records_total"] == 7
    assert samples["runstream_compactor_points_total"] == 300
    assert samples["runstream_compactor_dead_letters_total"] == 1
    assert samples["runstream_compactor_files_total"] == 2
    assert samples["runstream_compactor_merges_total"] == 1
    assert samples["runstream_compactor_commits_total"] == 3
    assert samples["runstream_compactor_buffered_points"] == 40
    assert samples["runstream_compactor_writes_in_flight"] == 1
    assert samples["runstream_compactor_assigned_partitions"] == 2


def test_health_follows_the_worker() -> None:
    metrics = CompactorMetrics()
    assert metrics.ready() == "no partition assigned yet"
    worker = SimpleNamespace(stats=Stats(), failed=None, assigned=frozenset())
    metrics.watch(worker)
    assert metrics.live() is None
    assert metrics.ready() == "no partition assigned yet"
    worker.assigned = frozenset({3})
    assert metrics.ready() is None
    worker.failed = OSError("store unreachable")
    assert metrics.live() == "failed: OSError('store unreachable')"
    assert metrics.ready() == metrics.live()
