"""The workers' metrics/health server: real HTTP on a free port, the body parsed by
prometheus_client's own text parser."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from runstream.core.errors import ConfigError
from runstream.core.observability import HEALTH_PATH, METRICS_PATH, READY_PATH, WorkerServer, serve
from runstream.core.settings import Settings, is_known_variable


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def server() -> Iterator[tuple[WorkerServer, Counter, list[str | None]]]:
    registry = CollectorRegistry()
    counter = Counter("runstream_test_things", "Things", registry=registry)
    readiness: list[str | None] = ["no partition assigned yet"]
    running = WorkerServer(registry, "127.0.0.1", 0, ready=lambda: readiness[0]).start()
    yield running, counter, readiness
    running.close()


def test_metrics_are_served_in_the_prometheus_format(server: tuple) -> None:
    running, counter, _ = server
    counter.inc(3)
    status, body = _get(running.port, METRICS_PATH)
    assert status == 200
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }
    assert samples["runstream_test_things_total"] == 3.0


def test_health_and_readiness_answer_with_the_reason(server: tuple) -> None:
    running, _, readiness = server
    assert _get(running.port, HEALTH_PATH) == (200, "ok\n")
    assert _get(running.port, READY_PATH) == (503, "no partition assigned yet\n")
    readiness[0] = None
    assert _get(running.port, READY_PATH) == (200, "ok\n")
    assert _get(running.port, "/nope")[0] == 404


def test_a_failing_check_is_a_503_not_a_dead_server() -> None:
    def broken() -> str | None:
        raise RuntimeError("boom")

    running = WorkerServer(CollectorRegistry(), "127.0.0.1", 0, live=broken).start()
    try:
        status, body = _get(running.port, HEALTH_PATH)
        assert status == 503 and "boom" in body
    finally:
        running.close()


def test_no_port_serves_nothing() -> None:
    settings = Settings.resolve("kafka://127.0.0.1:9092", environ={})
    assert settings.metrics_port is None
    assert serve(settings, CollectorRegistry()) is None


def test_metrics_port_and_host_come_from_arguments_then_the_environment() -> None:
    env = {"RUNSTREAM_METRICS_PORT": "9100", "RUNSTREAM_METRICS_HOST": "0.0.0.0"}
    settings = Settings.resolve("kafka://k:9092", environ=env)
    assert (settings.metrics_port, settings.metrics_host) == (9100, "0.0.0.0")
    settings = Settings.resolve("kafka://k:9092", metrics_port=9200, environ=env)
    assert settings.metrics_port == 9200


@pytest.mark.parametrize("raw", ["abc", "70000", "-1"])
def test_a_bad_metrics_port_names_the_variable_and_the_range(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"RUNSTREAM_METRICS_PORT=.*0 to 65535"):
        Settings.resolve("kafka://k:9092", environ={"RUNSTREAM_METRICS_PORT": raw})


def test_known_variables() -> None:
    assert is_known_variable("RUNSTREAM_METRICS_PORT")
    assert is_known_variable("RUNSTREAM_KAFKA_SASL_MECHANISM")
    assert not is_known_variable("RUNSTREAM_KAFKA_")
    assert not is_known_variable("RUNSTREAM_METRIC_PORT")


def test_a_taken_port_is_a_config_error_naming_the_option_and_variable() -> None:
    first = WorkerServer(CollectorRegistry(), "127.0.0.1", 0).start()
    try:
        settings = Settings.resolve("kafka://k:9092", metrics_port=first.port, environ={})
        with pytest.raises(ConfigError, match=r"--metrics-port / RUNSTREAM_METRICS_PORT"):
            serve(settings, CollectorRegistry())
    finally:
        first.close()
