"""Configuration resolution, the one place it happens.

Precedence: explicit arguments, then ``RUNSTREAM_*`` environment variables, then defaults.
The environment is read only by :meth:`Settings.resolve`, called at entry points (the SDK's
client, the CLI); everything below receives a frozen :class:`Settings`.

Connection settings pass straight through:

- Kafka: every ``RUNSTREAM_KAFKA_<NAME>`` variable becomes the librdkafka property
  ``<name>`` with ``_`` read as ``.`` (``RUNSTREAM_KAFKA_SASL_MECHANISM=PLAIN`` gives
  ``sasl.mechanism=PLAIN``), so SASL and TLS work as confluent-kafka documents them.
- S3: credentials, region and profiles are read by botocore as usual (``AWS_*``,
  ``~/.aws``); ``RUNSTREAM_S3_ENDPOINT`` points at any S3-compatible server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from runstream.core.errors import ConfigError

DEFAULT_TRACKING_URI = "file://./runstream-data"
DEFAULT_TOPIC_PREFIX = "runstream"
DEFAULT_METRICS_HOST = "127.0.0.1"
DEFAULT_RUN_LEASE = 120.0
"""Seconds without an event after which an open run that sends heartbeats is CRASHED."""
MAX_RUN_LEASE = 7 * 24 * 3600.0
"""The longest lease accepted (a week)."""
_KAFKA_ENV_PREFIX = "RUNSTREAM_KAFKA_"
UI_TOKEN_VARIABLE = "RUNSTREAM_UI_TOKEN"
# Every RUNSTREAM_* variable a long-running worker or the CLI reads (the SDK's job variables
# are the SDK's), plus the RUNSTREAM_KAFKA_* family: what deploy files may set.
VARIABLES = frozenset(
    {
        "RUNSTREAM_TRACKING_URI",
        "RUNSTREAM_STORE",
        "RUNSTREAM_S3_ENDPOINT",
        "RUNSTREAM_TOPIC_PREFIX",
        "RUNSTREAM_NO_OP",
        "RUNSTREAM_SPILL_DIR",
        "RUNSTREAM_JOURNAL",
        "RUNSTREAM_RUN_LEASE",
        "RUNSTREAM_HEARTBEAT_INTERVAL",
        "RUNSTREAM_METRICS_PORT",
        "RUNSTREAM_METRICS_HOST",
        UI_TOKEN_VARIABLE,
    }
)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})

Scheme = Literal["kafka", "file", "noop"]


def is_known_variable(name: str) -> bool:
    """Whether ``name`` is a ``RUNSTREAM_*`` variable Runstream reads (see :data:`VARIABLES`;
    any ``RUNSTREAM_KAFKA_<PROPERTY>`` is one)."""
    return name in VARIABLES or (
        name.startswith(_KAFKA_ENV_PREFIX) and len(name) > len(_KAFKA_ENV_PREFIX)
    )


def parse_port(name: str, raw: str) -> int:
    """Parse a TCP port (0: any free one).

    Raises:
        ConfigError: the value is not an integer from 0 to 65535.
    """
    try:
        port = int(raw.strip())
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name}={raw!r} is not a port: use an integer from 0 to 65535")
    return port


def parse_bool(name: str, raw: str) -> bool:
    """Parse an environment flag strictly.

    Raises:
        ConfigError: the value is not one of 1/0, true/false, yes/no, on/off.
    """
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean: use 1/0, true/false, yes/no or on/off")


@dataclass(frozen=True)
class TrackingUri:
    """A parsed tracking URI: ``kafka://h1:9092,h2:9092``, ``file:///path`` or ``noop://``."""

    scheme: Scheme
    location: str

    @classmethod
    def parse(cls, uri: str) -> TrackingUri:
        """Parse ``uri``.

        Raises:
            ConfigError: the scheme is not kafka, file or noop, or the location is empty.
        """
        parts = urlsplit(uri)
        scheme = parts.scheme.lower()
        if scheme == "noop":
            return cls("noop", "")
        if scheme == "kafka":
            servers = uri.split("://", 1)[1].strip("/")
            if not servers:
                raise ConfigError(f"tracking URI {uri!r} names no broker: use kafka://host:9092")
            return cls("kafka", servers)
        if scheme == "file" or scheme == "":
            path = uri.split("://", 1)[1] if "://" in uri else uri
            if not path:
                raise ConfigError(f"tracking URI {uri!r} names no folder: use file:///path")
            return cls("file", path)
        raise ConfigError(
            f"tracking URI {uri!r} has scheme {scheme!r}: use kafka://host:port, file:///path or noop://"
        )

    @property
    def bootstrap_servers(self) -> str:
        """The Kafka bootstrap servers.

        Raises:
            ConfigError: the URI is not a kafka:// URI.
        """
        if self.scheme != "kafka":
            raise ConfigError(f"{self} is not a kafka:// tracking URI")
        return self.location

    @property
    def path(self) -> Path:
        """The local folder of a file:// URI.

        Raises:
            ConfigError: the URI is not a file:// URI.
        """
        if self.scheme != "file":
            raise ConfigError(f"{self} is not a file:// tracking URI")
        return Path(self.location).expanduser()

    def __str__(self) -> str:
        return f"{self.scheme}://{self.location}"


@dataclass(frozen=True)
class Settings:
    """Everything a Runstream component needs to connect, frozen after resolution.

    Attributes:
        tracking_uri: where events go and come from.
        store: where Parquet goes: ``s3://bucket/prefix`` or a local folder; for a file://
            tracking URI it defaults to ``<folder>/store``.
        s3_endpoint: endpoint URL of an S3-compatible server, or None for AWS.
        topic_prefix: prefix of every topic name (``runstream`` gives ``runstream.events``).
        kafka: librdkafka properties passed through unchanged (SASL, TLS, ...).
        storage_options: s3fs/fsspec options passed through unchanged.
        no_op: accept and validate every SDK call, send nothing.
        spill_dir: the SDK's journal folder: every batch is written there before it is
            produced, and stays until Kafka acknowledges it (``RUNSTREAM_SPILL_DIR``,
            default ``$XDG_STATE_HOME/runstream/spill``).
        journal: write every batch to the journal before producing it; off, only batches
            Kafka does not take are written there (``RUNSTREAM_JOURNAL``, default on).
        metrics_port: where a worker serves ``/metrics``, ``/healthz`` and ``/readyz``
            (``RUNSTREAM_METRICS_PORT``); None serves nothing.
        metrics_host: the address that server listens on (``RUNSTREAM_METRICS_HOST``,
            default 127.0.0.1; ``0.0.0.0`` in a container).
        run_lease: seconds without an event after which an open run that sends heartbeats
            is shown CRASHED (``RUNSTREAM_RUN_LEASE``, default 120).
        heartbeat_interval: seconds between the SDK's heartbeats of an open run
            (``RUNSTREAM_HEARTBEAT_INTERVAL``, default a quarter of the lease).
    """

    tracking_uri: TrackingUri
    store: str
    s3_endpoint: str | None = None
    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    kafka: Mapping[str, Any] = field(default_factory=dict)
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    no_op: bool = False
    spill_dir: Path = field(default_factory=lambda: _default_spill_dir({}))
    metrics_port: int | None = None
    metrics_host: str = DEFAULT_METRICS_HOST
    journal: bool = True
    run_lease: float = DEFAULT_RUN_LEASE
    heartbeat_interval: float = DEFAULT_RUN_LEASE / 4

    @classmethod
    def resolve(
        cls,
        tracking_uri: str | None = None,
        store: str | None = None,
        *,
        s3_endpoint: str | None = None,
        topic_prefix: str | None = None,
        kafka: Mapping[str, Any] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        no_op: bool | None = None,
        spill_dir: Path | str | None = None,
        metrics_port: int | None = None,
        metrics_host: str | None = None,
        journal: bool | None = None,
        run_lease: float | None = None,
        heartbeat_interval: float | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Resolve settings from arguments, then ``RUNSTREAM_*`` variables, then defaults.

        Raises:
            ConfigError: a value is malformed (the message names it).
        """
        env = os.environ if environ is None else environ
        uri = TrackingUri.parse(
            tracking_uri or env.get("RUNSTREAM_TRACKING_URI") or DEFAULT_TRACKING_URI
        )
        if no_op is None:
            no_op = parse_bool("RUNSTREAM_NO_OP", env.get("RUNSTREAM_NO_OP", "0"))
        if journal is None:
            journal = parse_bool("RUNSTREAM_JOURNAL", env.get("RUNSTREAM_JOURNAL", "1"))
        if no_op:
            uri = TrackingUri("noop", "")
        resolved_store = store or env.get("RUNSTREAM_STORE") or _default_store(uri)
        kafka_conf = {**_kafka_from_env(env), **(kafka or {})}
        if metrics_port is None and env.get("RUNSTREAM_METRICS_PORT", "").strip():
            metrics_port = parse_port("RUNSTREAM_METRICS_PORT", env["RUNSTREAM_METRICS_PORT"])
        elif metrics_port is not None:
            metrics_port = parse_port("metrics_port", str(metrics_port))
        lease = _seconds("RUNSTREAM_RUN_LEASE", run_lease, env, DEFAULT_RUN_LEASE, MAX_RUN_LEASE)
        beat = _seconds("RUNSTREAM_HEARTBEAT_INTERVAL", heartbeat_interval, env, lease / 4, lease)
        return cls(
            tracking_uri=uri,
            store=resolved_store.rstrip("/"),
            s3_endpoint=s3_endpoint or env.get("RUNSTREAM_S3_ENDPOINT") or None,
            topic_prefix=topic_prefix or env.get("RUNSTREAM_TOPIC_PREFIX") or DEFAULT_TOPIC_PREFIX,
            kafka=kafka_conf,
            storage_options=dict(storage_options or {}),
            no_op=uri.scheme == "noop",
            spill_dir=Path(spill_dir).expanduser() if spill_dir else _default_spill_dir(env),
            metrics_port=metrics_port,
            metrics_host=metrics_host or env.get("RUNSTREAM_METRICS_HOST") or DEFAULT_METRICS_HOST,
            journal=journal,
            run_lease=lease,
            heartbeat_interval=beat,
        )

    def kafka_config(self, **overrides: Any) -> dict[str, Any]:
        """librdkafka properties for a client of this tracking URI, with ``overrides`` on top.

        Raises:
            ConfigError: the tracking URI is not kafka://.
        """
        return {"bootstrap.servers": self.tracking_uri.bootstrap_servers, **self.kafka, **overrides}

    def fs_options(self) -> dict[str, Any]:
        """fsspec/s3fs keyword options for the store (endpoint added when set)."""
        options: dict[str, Any] = dict(self.storage_options)
        if self.store.startswith("s3://") and self.s3_endpoint:
            client_kwargs = dict(options.get("client_kwargs", {}))
            client_kwargs.setdefault("endpoint_url", self.s3_endpoint)
            options["client_kwargs"] = client_kwargs
        return options


def _seconds(
    name: str, given: float | None, env: Mapping[str, str], default: float, limit: float
) -> float:
    """A duration in seconds: the argument, else variable ``name``, else ``default``.

    Raises:
        ConfigError: it is not a number greater than 0 and below ``limit``.
    """
    raw: object = given if given is not None else env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(str(raw))
    except ValueError:
        value = float("nan")
    if not 0 < value < limit:
        raise ConfigError(f"{name}={raw!r}: give seconds greater than 0 and less than {limit:g}")
    return value


def _default_store(uri: TrackingUri) -> str:
    if uri.scheme == "file":
        return str(uri.path / "store")
    return str(Path("runstream-data") / "store")


def _default_spill_dir(env: Mapping[str, str]) -> Path:
    if env.get("RUNSTREAM_SPILL_DIR"):
        return Path(env["RUNSTREAM_SPILL_DIR"]).expanduser()
    state = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "runstream" / "spill"


def _kafka_from_env(env: Mapping[str, str]) -> dict[str, str]:
    return {
        name[len(_KAFKA_ENV_PREFIX) :].lower().replace("_", "."): value
        for name, value in env.items()
        if name.startswith(_KAFKA_ENV_PREFIX)
    }
