"""What a long-running worker shows its operators: Prometheus metrics and health endpoints.

One small HTTP server per worker (processor, compactor) serves::

    /metrics   the worker's registry in Prometheus' text format (prometheus_client)
    /healthz   200 while the worker lives, 503 and the reason when it should be restarted
    /readyz    200 once it is connected and holds partitions, 503 and the reason before

The web UI serves the same three paths on its own port. :class:`GroupLag` reports a consumer
group's lag per partition (high watermark minus committed offset) read by a consumer of its
own, so the number is the one Kafka's tools show, whatever client the worker uses.

Needs the ``metrics`` extra of runstream-core (prometheus-client).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import click
from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from runstream.core.errors import ConfigError
from runstream.core.settings import Settings

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
PATHS = (METRICS_PATH, HEALTH_PATH, READY_PATH)

_F = TypeVar("_F", bound=Callable[..., Any])


def metrics_options(command: _F) -> _F:
    """The ``--metrics-port`` and ``--metrics-host`` options of a worker's command (pass them
    to :meth:`Settings.resolve`)."""
    command = click.option(
        "--metrics-host",
        default=None,
        help="Address of the metrics/health server (default: RUNSTREAM_METRICS_HOST or "
        "127.0.0.1; 0.0.0.0 in a container).",
    )(command)
    return click.option(
        "--metrics-port",
        type=click.IntRange(0, 65535),
        default=None,
        help=f"Serve {METRICS_PATH}, {HEALTH_PATH} and {READY_PATH} on this port "
        "(default: RUNSTREAM_METRICS_PORT; not served when unset).",
    )(command)


# A check answers None when all is well, else the reason it is not (the 503's body).
Check = Callable[[], str | None]


def _always_well() -> str | None:
    return None


class WorkerServer:
    """Serves ``/metrics``, ``/healthz`` and ``/readyz`` of one worker on a daemon thread.

    Args:
        registry: the metrics to serve.
        host: the address to listen on.
        port: the port (0: any free one; see :attr:`port`).
        live: the liveness check (None: live while the server answers).
        ready: the readiness check (None: ready while live).
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str,
        port: int,
        live: Check | None = None,
        ready: Check | None = None,
    ) -> None:
        self.registry = registry
        self.live = live or _always_well
        self.ready = ready or _always_well
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="runstream-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._server.server_address[1])

    def start(self) -> WorkerServer:
        """Start serving in the background; returns self."""
        self._thread.start()
        logger.info("metrics and health on port %d", self.port)
        return self

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str) -> tuple[int, str, bytes]:
        """Status, content type and body for a GET of ``path``."""
        if path == METRICS_PATH:
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        check = {HEALTH_PATH: self.live, READY_PATH: self.ready}.get(path)
        if check is None:
            return 404, "text/plain; charset=utf-8", f"not found: use {', '.join(PATHS)}\n".encode()
        try:
            problem = check()
        except Exception as error:  # a broken check is an unhealthy worker, not a dead server
            logger.warning("%s check failed", path, exc_info=True)
            problem = f"check failed: {error!r}"
        if problem is None:
            return 200, "text/plain; charset=utf-8", b"ok\n"
        return 503, "text/plain; charset=utf-8", f"{problem}\n".encode()


def _handler_for(server: WorkerServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, content_type, body = server.answer(self.path.split("?", 1)[0])
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("%s " + format, self.address_string(), *args)

    return Handler


def serve(
    settings: Settings,
    registry: CollectorRegistry,
    live: Check | None = None,
    ready: Check | None = None,
) -> WorkerServer | None:
    """Start a :class:`WorkerServer` on ``settings.metrics_host:metrics_port``; None (nothing
    served) when no port is set.

    Raises:
        ConfigError: the address cannot be bound (the port is taken, the host is not local).
    """
    if settings.metrics_port is None:
        return None
    host, port = settings.metrics_host, settings.metrics_port
    try:
        server = WorkerServer(registry, host, port, live, ready)
    except OSError as error:
        raise ConfigError(
            f"metrics port (--metrics-port / RUNSTREAM_METRICS_PORT) {port} on "
            f"{host} (--metrics-host / RUNSTREAM_METRICS_HOST) cannot be bound: {error}"
        ) from error
    return server.start()


class GroupLag(Collector):
    """A collector of ``<name>{partition}``: per partition of ``topic``, the high watermark
    minus the offset ``group`` has committed (minus the low watermark when it has committed
    nothing). Read at each scrape by a consumer of its own that never joins the group.

    Every member of a group reports the same numbers: with several replicas, aggregate with
    ``max by (partition)``. A scrape that cannot reach Kafka in ``timeout`` seconds reports no
    lag (and logs why) rather than a stale one.
    """

    def __init__(
        self, settings: Settings, topic: str, group: str, name: str, timeout: float = 5.0
    ) -> None:
        self.topic = topic
        self.group = group
        self.name = name
        self.timeout = timeout
        self._config = settings.kafka_config(
            **{"group.id": group, "enable.auto.commit": False, "client.id": f"{group}-lag"}
        )
        self._consumer: Consumer | None = None
        self._lock = threading.Lock()

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            self.name,
            f"Messages of {self.topic} not yet committed by consumer group {self.group}",
            labels=["partition"],
        )

    def describe(self) -> Iterable[Metric]:
        """The metric's name and help, without asking Kafka (used at registration)."""
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        """The lag of every partition, read now."""
        family = self._family()
        try:
            for partition, lag in sorted(self.lag().items()):
                family.add_metric([str(partition)], lag)
        except KafkaException as error:
            logger.warning("lag of group %s on %s not read: %s", self.group, self.topic, error)
        return [family]

    def lag(self) -> dict[int, int]:
        """Partition -> lag, read now.

        Raises:
            KafkaException: Kafka did not answer in time.
        """
        with self._lock:
            if self._consumer is None:
                self._consumer = Consumer(self._config)
            consumer = self._consumer
            metadata = consumer.list_topics(self.topic, timeout=self.timeout)
            topic = metadata.topics.get(self.topic)
            if topic is None or topic.error is not None:
                return {}
            partitions = [TopicPartition(self.topic, p) for p in sorted(topic.partitions)]
            committed = consumer.committed(partitions, timeout=self.timeout)
            lags = {}
            for tp in committed:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(self.topic, tp.partition), timeout=self.timeout
                )
                position = tp.offset if tp.offset >= 0 else low
                lags[tp.partition] = max(0, high - position)
            return lags

    def close(self) -> None:
        """Close the consumer."""
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
