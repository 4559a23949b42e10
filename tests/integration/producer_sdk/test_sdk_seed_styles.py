"""Each seed's documented style, against the local Kafka: what lands on the topic."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

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
from runstream.core.settings import Settings
from runstream.tracking import Client

from .conftest import topic_events

T = TypeVar("T")


def _payloads(settings: Settings, run_id: str) -> list[Any]:
    """The payloads of run ``run_id`` on the settings' events topic."""
    return [e.payload for batch_run, e in _by_run(settings) if batch_run == run_id]


def _by_run(settings: Settings) -> list[tuple[str, Any]]:
    from runstream.contract import Codec, decode_batch
    from runstream.core.source import read_topic
    from runstream.core.topics import Topics

    codec = Codec()
    out = []
    for record in read_topic(settings, Topics(settings.topic_prefix).events, timeout=30.0):
        batch = decode_batch(codec, record.value)
        out.extend((batch.run_id, event) for event in batch.logical_events())
    return out


def _of(payloads: list[Any], kind: type[T]) -> list[T]:
    return [p for p in payloads if isinstance(p, kind)]


@pytest.fixture
def fluent(
    sdk_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Any]:
    """Run a function in a fresh context whose tracking URI is the shared Kafka and whose
    topic prefix is this test's own (set the documented way: the environment)."""
    monkeypatch.setenv("RUNSTREAM_TOPIC_PREFIX", sdk_settings.topic_prefix)
    monkeypatch.setenv("RUNSTREAM_SPILL_DIR", str(tmp_path / "spill"))
    monkeypatch.delenv("RUNSTREAM_NO_OP", raising=False)

    def run(fn: Callable[[], T]) -> T:
        def body() -> T:
            rs.set_tracking_uri(str(sdk_settings.tracking_uri))
            try:
                return fn()
            finally:
                rs.get_client().close(30.0)

        return contextvars.copy_context().run(body)

    return run


@pytest.mark.integration
def test_submarine_style(fluent: Callable[..., Any], sdk_settings: Settings) -> None:
    def body() -> None:
        rs.start_run(run_name="mnist", run_id="submarine-1")
        rs.log_param("learning_rate", 0.01)
        for step in range(3):
            rs.log_metric("accuracy", 0.5 + step / 10, step)
        rs.end_run()
        rs.flush()

    fluent(body)
    payloads = _payloads(sdk_settings, "submarine-1")
    assert _of(payloads, RunStarted)[0].name == "mnist"
    assert _of(payloads, ParamLogged) == [ParamLogged("learning_rate", "0.01")]
    assert [(m.key, m.value, m.step) for m in _of(payloads, MetricLogged)] == [
        ("accuracy", 0.5, 0),
        ("accuracy", 0.6, 1),
        ("accuracy", 0.7, 2),
    ]
    assert [e.status for e in _of(payloads, RunEnded)] == ["FINISHED"]


@dataclass
class SapMetric:
    """Shaped like SAP AI Core's Metric: name, value, timestamp (datetime), step."""

    name: str
    value: float
    timestamp: datetime
    step: int


@pytest.mark.integration
def test_sap_style(sdk_client: Client, sdk_settings: Settings) -> None:
    run = sdk_client.start_run(run_name="sap", collection="exp", run_id="sap-1")
    run.log_parameters({"epochs": 5, "optimizer": "adam"})
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    run.log_metrics(
        [
            {"name": "loss", "value": 0.7, "step": 1},
            SapMetric("accuracy", 0.8, when, 1),
        ]
    )
    run.set_tags([{"name": "owner", "value": "team-a"}])
    run.set_tags({"stage": "dev"})
    run.set_labels([{"name": "dataset", "value": "cifar"}])
    run.update_run_info(run_name="sap-renamed", run_collection_name="exp2")
    run.persist_run()
    run.end()
    sdk_client.flush()
    payloads = _payloads(sdk_settings, "sap-1")
    assert sorted(_of(payloads, ParamLogged), key=lambda p: p.key) == [
        ParamLogged("epochs", "5"),
        ParamLogged("optimizer", "adam"),
    ]
    metrics = {m.key: m for m in _of(payloads, MetricLogged)}
    assert metrics["loss"].value == 0.7 and metrics["loss"].step == 1
    assert metrics["accuracy"].timestamp == int(when.timestamp() * 1000)
    assert sorted((t.namespace, t.key, t.value) for t in _of(payloads, TagSet)) == [
        ("labels", "dataset", "cifar"),
        ("tags", "owner", "team-a"),
        ("tags", "stage", "dev"),
    ]
    assert _of(payloads, RunUpdated) == [RunUpdated("sap-renamed", "exp2")]
    assert _of(payloads, RunStarted)[0].collection == "exp"


@pytest.mark.integration
def test_polyaxon_style_and_no_op_switch(
    fluent: Callable[..., Any], sdk_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def body() -> None:
        with rs.start_run(run_id="polyaxon-1"):
            rs.log_metrics(step=1, loss=0.9, accuracy=0.1)
            rs.log_metrics(step=2, loss=0.5, accuracy=0.6)

    fluent(body)
    monkeypatch.setenv("RUNSTREAM_NO_OP", "1")

    def silent() -> str:
        with rs.start_run(run_id="polyaxon-noop") as run:
            rs.log_metrics(step=1, loss=123.0)
            rs.log("not sent")
        rs.flush()
        return run.run_id

    assert fluent(silent) == "polyaxon-noop"
    events = topic_events(sdk_settings)
    assert {e.payload.key for _, e in events if isinstance(e.payload, MetricLogged)} == {
        "loss",
        "accuracy",
    }
    points = sorted(
        (m.step, m.key, m.value) for m in _of([e.payload for _, e in events], MetricLogged)
    )
    assert points == [
        (1, "accuracy", 0.1),
        (1, "loss", 0.9),
        (2, "accuracy", 0.6),
        (2, "loss", 0.5),
    ]
    assert not any(isinstance(e.payload, LogLine) for _, e in events)  # the no-op run sent nothing


@pytest.mark.integration
def test_ml_dash_style(sdk_client: Client, sdk_settings: Settings) -> None:
    with sdk_client.start_run(run_name="dash", run_id="mldash-1") as run:
        run.params.set(lr=0.001, model={"name": "resnet", "depth": 18})
        train = run.metrics("train")
        train.log(loss=0.9, epoch=0)
        train.log(loss=0.7, epoch=1, accuracy=0.55)  # the schema may vary point to point
        run.log("gradient spike", level="warn", metadata={"epoch": 1, "norm": 12.5})
    sdk_client.flush()
    payloads = _payloads(sdk_settings, "mldash-1")
    assert sorted((p.key, p.value) for p in _of(payloads, ParamLogged)) == [
        ("lr", "0.001"),
        ("model.depth", "18"),
        ("model.name", "resnet"),
    ]
    assert sorted((m.step, m.key, m.value) for m in _of(payloads, MetricLogged)) == [
        (0, "train/epoch", 0.0),
        (0, "train/loss", 0.9),
        (1, "train/accuracy", 0.55),
        (1, "train/epoch", 1.0),
        (1, "train/loss", 0.7),
    ]
    assert _of(payloads, LogLine) == [
        LogLine("warn", "gradient spike", {"epoch": "1", "norm": "12.5"})
    ]
    assert [e.status for e in _of(payloads, RunEnded)] == ["FINISHED"]
