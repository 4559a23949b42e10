"""Configuration: arguments, then RUNSTREAM_* variables, then defaults; pass-through settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from runstream.core.errors import ConfigError
from runstream.core.settings import Settings, TrackingUri, parse_bool


def test_defaults_are_the_embedded_mode() -> None:
    settings = Settings.resolve(environ={})
    assert settings.tracking_uri == TrackingUri("file", "./runstream-data")
    assert settings.store == "runstream-data/store"
    assert settings.topic_prefix == "runstream"
    assert not settings.no_op


def test_arguments_win_over_the_environment() -> None:
    env = {"RUNSTREAM_TRACKING_URI": "kafka://env:9092", "RUNSTREAM_STORE": "s3://env/x"}
    settings = Settings.resolve("kafka://arg:9092", "s3://arg/y", environ=env)
    assert settings.tracking_uri.bootstrap_servers == "arg:9092"
    assert settings.store == "s3://arg/y"
    assert Settings.resolve(environ=env).tracking_uri.bootstrap_servers == "env:9092"


def test_kafka_properties_pass_through_from_the_environment() -> None:
    env = {
        "RUNSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "RUNSTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    }
    settings = Settings.resolve("kafka://a:1,b:2", environ=env, kafka={"client.id": "x"})
    assert settings.kafka_config(acks="all") == {
        "bootstrap.servers": "a:1,b:2",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "client.id": "x",
        "acks": "all",
    }


def test_s3_endpoint_reaches_s3fs_options() -> None:
    settings = Settings.resolve(
        "noop://", "s3://b/p", environ={"RUNSTREAM_S3_ENDPOINT": "http://h:1"}
    )
    assert settings.fs_options() == {"client_kwargs": {"endpoint_url": "http://h:1"}}
    assert Settings.resolve("noop://", "/tmp/x", environ={}).fs_options() == {}


def test_no_op_switch_by_environment() -> None:
    assert Settings.resolve("kafka://a:1", environ={"RUNSTREAM_NO_OP": "1"}).no_op
    assert not Settings.resolve("kafka://a:1", environ={"RUNSTREAM_NO_OP": "0"}).no_op
    assert Settings.resolve("noop://", environ={}).no_op


@pytest.mark.parametrize("raw", ["maybe", "2", "tru"])
def test_booleans_are_parsed_strictly(raw: str) -> None:
    with pytest.raises(ConfigError, match="RUNSTREAM_NO_OP"):
        parse_bool("RUNSTREAM_NO_OP", raw)


@pytest.mark.parametrize("uri", ["ftp://x", "kafka://", "http://h"])
def test_a_bad_tracking_uri_names_the_accepted_forms(uri: str) -> None:
    with pytest.raises(ConfigError, match="kafka://"):
        Settings.resolve(uri, environ={})


def test_file_uri_path() -> None:
    assert TrackingUri.parse("file:///data/rs").path == Path("/data/rs")
    with pytest.raises(ConfigError):
        _ = TrackingUri.parse("noop://").path


def test_the_run_lease_and_heartbeat_interval_default_and_come_from_the_environment() -> None:
    default = Settings.resolve(environ={})
    assert (default.run_lease, default.heartbeat_interval) == (120.0, 30.0)
    env = {"RUNSTREAM_RUN_LEASE": "3", "RUNSTREAM_HEARTBEAT_INTERVAL": "0.5"}
    assert Settings.resolve(environ=env).run_lease == 3.0
    assert Settings.resolve(environ=env).heartbeat_interval == 0.5
    only_lease = Settings.resolve(environ={"RUNSTREAM_RUN_LEASE": "8"})
    assert only_lease.heartbeat_interval == 2.0
    assert Settings.resolve(run_lease=4.0, environ=env).run_lease == 4.0


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"RUNSTREAM_RUN_LEASE": "soon"}, "RUNSTREAM_RUN_LEASE"),
        ({"RUNSTREAM_RUN_LEASE": "0"}, "RUNSTREAM_RUN_LEASE"),
        ({"RUNSTREAM_RUN_LEASE": "nan"}, "RUNSTREAM_RUN_LEASE"),
        ({"RUNSTREAM_RUN_LEASE": "1e9"}, "RUNSTREAM_RUN_LEASE"),
        ({"RUNSTREAM_RUN_LEASE": "3", "RUNSTREAM_HEARTBEAT_INTERVAL": "3"}, "INTERVAL"),
        ({"RUNSTREAM_HEARTBEAT_INTERVAL": "-1"}, "RUNSTREAM_HEARTBEAT_INTERVAL"),
    ],
)
def test_a_bad_lease_or_interval_names_the_variable_and_the_limit(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named) as caught:
        Settings.resolve(environ=env)
    assert "greater than 0 and less than" in str(caught.value)
