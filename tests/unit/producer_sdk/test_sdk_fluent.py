"""The fluent API over a local log: context manager, contextvar isolation, no-op mode."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import runstream.tracking as rs
from runstream.contract import (
    LogLine,
    MetricLogged,
    ParamLogged,
    RunEnded,
    RunStarted,
    RunUpdated,
    TagSet,
)
from runstream.tracking import NoActiveRunError, RunEndedError, ValidationError

from .conftest import payloads


@pytest.fixture
def uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh local tracking URI, set in a context of this test only."""
    monkeypatch.setenv("RUNSTREAM_SPILL_DIR", str(tmp_path / "spill"))
    value = f"file://{tmp_path / 'tracking'}"
    context = contextvars.copy_context()
    context.run(rs.set_tracking_uri, value)
    yield value
    # the context (and so its client) is dropped with the test


def _in(context: contextvars.Context, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    return context.run(fn, *args, **kwargs)


def test_tracking_uri_from_env_and_setter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RUNSTREAM_TRACKING_URI", f"file://{tmp_path}/env")
    context = contextvars.copy_context()
    assert context.run(rs.get_tracking_uri) == f"file://{tmp_path}/env"
    context.run(rs.set_tracking_uri, "noop://")
    assert context.run(rs.get_tracking_uri) == "noop://"


def test_context_manager_ends_failed_on_exception(tmp_path: Path) -> None:
    def body() -> rs.Client:
        rs.set_tracking_uri(f"file://{tmp_path / 't'}")
        with pytest.raises(ZeroDivisionError), rs.start_run(run_name="boom", run_id="ctx-1") as run:
            assert rs.active_run() is run
            rs.log_metric("loss", 1.0)
            _ = 1 / 0
        assert rs.active_run() is None
        with pytest.raises(RunEndedError):
            run.log_metric("loss", 2.0)
        return rs.get_client()

    client = contextvars.copy_context().run(body)
    ended = payloads(client, RunEnded)
    assert [e.status for e in ended] == ["FAILED"]
    started = payloads(client, RunStarted)
    assert started[0].name == "boom"
    # the code version follows in a RunStarted of its own, with the run's start time
    code = [s for s in started if s.python_version]
    assert len(code) == 1 and code[0].command and code[0].name is None
    assert code[0].start_time_us == started[0].start_time_us
    assert code[0].git_commit is None or len(code[0].git_commit) == 40
    client.close()


def test_fluent_calls_land_in_the_log(tmp_path: Path) -> None:
    def body() -> rs.Client:
        rs.set_tracking_uri(f"file://{tmp_path / 't'}")
        rs.start_run(run_name="n", collection="c", run_id="fl-1", tags={"team": "a"})
        rs.log_param("lr", 0.1)
        rs.log_params({"model": {"depth": 4, "act": "relu"}})
        rs.log_metric("loss", 0.5, step=1, timestamp=1_700_000_000_000)
        rs.log_metrics({"acc": 0.9, "f1": 0.8}, step=2)
        rs.set_tag("stage", "dev")
        rs.set_tags({"owner": "me"})
        rs.set_labels({"priority": "high"})
        rs.log("hello", level="warn", metadata={"epoch": 1})
        rs.update_run_info(run_name="renamed", run_collection_name="c2")
        rs.flush()
        rs.end_run()
        assert rs.active_run() is None
        rs.end_run()  # no active run: nothing happens
        rs.delete_run("fl-1")
        with pytest.raises(NoActiveRunError):
            rs.log_metric("loss", 1.0)
        return rs.get_client()

    client = contextvars.copy_context().run(body)
    assert payloads(client, ParamLogged) == [
        ParamLogged("lr", "0.1"),
        ParamLogged("model.depth", "4"),
        ParamLogged("model.act", "relu"),
    ]
    metrics = {(p.key, p.step): p.value for p in payloads(client, MetricLogged)}
    assert metrics == {("loss", 1): 0.5, ("acc", 2): 0.9, ("f1", 2): 0.8}
    assert MetricLogged("loss", 0.5, 1, 1_700_000_000_000) in payloads(client, MetricLogged)
    tags = {(t.namespace, t.key): t.value for t in payloads(client, TagSet)}
    assert tags == {
        ("tags", "stage"): "dev",
        ("tags", "owner"): "me",
        ("labels", "priority"): "high",
    }
    assert payloads(client, LogLine) == [LogLine("warn", "hello", {"epoch": "1"})]
    assert payloads(client, RunUpdated) == [RunUpdated("renamed", "c2")]
    assert payloads(client, RunStarted)[0].tags == {"team": "a"}
    client.close()


def test_active_run_is_per_thread_and_per_context(tmp_path: Path) -> None:
    def body() -> None:
        rs.set_tracking_uri(f"file://{tmp_path / 't'}")
        run = rs.start_run(run_id="thr-1")
        seen: list[object] = []
        thread = threading.Thread(target=lambda: seen.append(rs.active_run()))
        thread.start()
        thread.join()
        assert seen == [None]
        assert contextvars.copy_context().run(rs.active_run) is run
        rs.end_run()
        rs.get_client().close()

    contextvars.copy_context().run(body)


def test_no_op_mode_validates_and_sends_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RUNSTREAM_NO_OP", "1")
    monkeypatch.setenv("RUNSTREAM_TRACKING_URI", f"file://{tmp_path / 't'}")

    def body() -> None:
        assert rs.get_tracking_uri() == "noop://"
        with rs.start_run(run_id="noop-1"):
            rs.log_metric("loss", 1.0)
            with pytest.raises(rs.ValidationError):
                rs.log_metric("loss", "x")
            rs.flush()
        rs.get_client().close()

    contextvars.copy_context().run(body)
    assert not (tmp_path / "t").exists()


def test_a_job_run_id_is_joined_when_no_run_is_active(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNSTREAM_RUN_ID", "job-7")

    def body() -> str | None:
        rs.set_tracking_uri(f"file://{tmp_path / 'job'}")
        rs.log_param("lr", 0.1)  # Submarine style: no start_run
        run = rs.active_run()
        rs.get_client().close(5.0)
        return None if run is None else run.run_id

    assert contextvars.copy_context().run(body) == "job-7"
    monkeypatch.setenv("RUNSTREAM_RUN_ID", "../escape")
    with pytest.raises(ValidationError):
        contextvars.copy_context().run(lambda: rs.log_param("lr", 0.1))
