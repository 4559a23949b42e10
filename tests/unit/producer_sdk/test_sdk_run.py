"""Run handles: the seeds' call forms, ordering at the end, identities, fork safety."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from runstream.contract import Codec, MetricLogged, ParamLogged, RunEnded, decode_batch
from runstream.core.locallog import read_log
from runstream.tracking import Client, ValidationError
from runstream.tracking.environment import new_producer

from .conftest import local_events, payloads


def test_metric_forms_of_every_seed(local_client: Client) -> None:
    run = local_client.start_run(run_id="forms-1", capture_code=False)
    run.log_metric("a", 1.0, 3)  # Submarine / MLflow
    run.log_metrics(step=4, b=2.0, c=3)  # Polyaxon
    run.log_metrics([{"name": "d", "value": 4.0, "step": 5}, {"name": "e", "value": 5}])  # SAP
    train = run.metrics("train")  # ML-Dash
    train.log(loss=0.5, epoch=0)
    train.log(loss=0.4, acc=0.7)
    with pytest.raises(ValidationError):
        run.log_metrics([{"value": 1.0}])
    run.end()
    points = {(p.key, p.step): p.value for p in payloads(local_client, MetricLogged)}
    assert points == {
        ("a", 3): 1.0,
        ("b", 4): 2.0,
        ("c", 4): 3.0,
        ("d", 5): 4.0,
        ("e", 0): 5.0,
        ("train/loss", 0): 0.5,
        ("train/epoch", 0): 0.0,
        ("train/loss", 1): 0.4,
        ("train/acc", 1): 0.7,
    }


def test_identities_are_contiguous_and_end_comes_last(local_client: Client) -> None:
    run = local_client.start_run(run_id="ids-1", capture_code=False)
    for step in range(25_000):
        run.log_metric("loss", float(step), step)
    run.log_param("p", 1)
    run.end()
    events = local_events(local_client)
    producers = {e.id.producer for e in events}
    assert len(producers) == 1
    # the points, RunStarted and its first Heartbeat, the param, RunEnded
    assert sorted(e.id.sequence for e in events) == list(range(25_004))
    assert isinstance(events[-1].payload, RunEnded)
    assert sum(isinstance(e.payload, MetricLogged) for e in events) == 25_000


def test_oversized_batches_are_split(local_client: Client) -> None:
    run = local_client.start_run(run_id="big-1", capture_code=False)
    run.log_params({f"p{i}": "v" * 6000 for i in range(400)})  # ~2.4 MB of params
    run.end()
    local_client.flush()
    folder = local_client.settings.tracking_uri.path / "events"
    sizes = [len(r.value) for r in read_log(folder)]
    assert max(sizes) < 1_000_000
    assert len(payloads(local_client, ParamLogged)) == 400


def test_producer_identity_from_environment() -> None:
    producer = new_producer({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "8"})
    assert (producer.rank, producer.local_rank, producer.world_size) == (3, 1, 8)
    assert producer.pid == os.getpid() and len(producer.id) == 16
    assert new_producer({"RANK": "x"}).rank is None
    assert new_producer({}).id != producer.id


def _child(run: object) -> None:
    run.log_metric("child", 1.0)  # type: ignore[attr-defined]
    # no flush, no close: the child's exit flushes (multiprocessing skips atexit)


def test_forked_child_writes_as_its_own_producer(local_client: Client) -> None:
    run = local_client.start_run(run_id="fork-1", capture_code=False)
    run.log_metric("parent", 1.0)
    local_client.flush()
    run.log_metric("parent", 2.0)  # queued in the parent at fork time: sent once, by it
    process = multiprocessing.get_context("fork").Process(target=_child, args=(run,))
    process.start()
    process.join(30)
    assert process.exitcode == 0
    run.end()
    local_client.flush()
    codec = Codec()
    folder = local_client.settings.tracking_uri.path / "events"
    by_file: dict[int, list[str]] = {}
    pids = set()
    for record in read_log(folder):
        batch = decode_batch(codec, record.value)
        pids.add(batch.producer.pid)
        by_file.setdefault(record.partition, []).extend(
            e.payload.key for e in batch.logical_events() if isinstance(e.payload, MetricLogged)
        )
    assert sorted(sorted(keys) for keys in by_file.values()) == [["child"], ["parent", "parent"]]
    assert pids == {os.getpid(), process.pid}


def test_exported_names_are_sorted_and_real() -> None:
    import runstream.tracking

    assert runstream.tracking.__all__ == sorted(runstream.tracking.__all__)
    assert all(hasattr(runstream.tracking, name) for name in runstream.tracking.__all__)


def test_spill_dir_resolution(tmp_path: Path) -> None:
    from runstream.core.settings import Settings

    def spill(**kwargs: object) -> Path:
        return Settings.resolve("noop://", **kwargs).spill_dir  # type: ignore[arg-type]

    assert spill(environ={"RUNSTREAM_SPILL_DIR": str(tmp_path)}) == tmp_path
    assert spill(environ={"XDG_STATE_HOME": "/s"}) == Path("/s/runstream/spill")
    assert spill(spill_dir="/x", environ={"RUNSTREAM_SPILL_DIR": "/y"}) == Path("/x")


def test_exit_flushes_without_an_explicit_flush(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "from runstream.tracking import Client\n"
        f"client = Client('file://{tmp_path}/t', spill_dir=None)\n"
        "run = client.start_run(run_id='exit-1', capture_code=False)\n"
        "for step in range(50_000):\n"
        "    run.log_metric('loss', 1.0, step)\n"
    )
    repo = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    codec = Codec()
    points = sum(
        len(decode_batch(codec, r.value).metrics) for r in read_log(tmp_path / "t" / "events")
    )
    assert points == 50_000


def test_log_columns_queues_plain_columns_and_declines_the_rest(local_client: Client) -> None:
    run = local_client.start_run(run_id="columns-1", capture_code=False)
    t0 = 1_700_000_000_000
    keys = [f"k{i % 3}" for i in range(1000)]
    assert run.log_columns(keys, [i / 4 for i in range(1000)], list(range(-500, 500)), [t0] * 1000)
    assert run.log_columns([], [], [], [])
    # not plain: declined, nothing logged (the caller's per-point path converts or refuses)
    assert not run.log_columns(["a"], [1], [0], [t0])  # an int value
    assert not run.log_columns(["a"], [1.0], [True], [t0])  # a bool step
    assert not run.log_columns(["a"], [1.0], [0], [t0 * 10**6])  # a timestamp out of range
    assert not run.log_columns(["a"], [1.0], [2**63], [t0])  # a step out of range
    assert not run.log_columns([["unhashable"]], [1.0], [0], [t0])
    with pytest.raises(ValidationError):
        run.log_columns(["bad key!"], [1.0], [0], [t0])
    with pytest.raises(ValidationError):
        run.log_columns(["a", "b"], [1.0], [0], [t0])
    run.end()
    with pytest.raises(Exception, match="ended"):
        run.log_columns(["a"], [1.0], [0], [t0])
    points = sorted(
        (p.key, p.step, p.value, p.timestamp) for p in payloads(local_client, MetricLogged)
    )
    assert points == sorted((f"k{i % 3}", i - 500, i / 4, t0) for i in range(1000))
