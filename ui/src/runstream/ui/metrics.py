"""The UI's Prometheus metrics and its ``/metrics``, ``/healthz`` and ``/readyz`` endpoints.

Metrics (all ``runstream_ui_*``)::

    requests_total{route,status}   requests answered, by route template (``/api/runs/{run_id}``)
    request_seconds{route}         time to answer a request (histogram)

The three paths are served without the UI's token (probes and scrapers carry none) and say
nothing about runs.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from runstream.core.observability import HEALTH_PATH, METRICS_PATH, READY_PATH

PREFIX = "runstream_ui"
OPEN_PATHS = frozenset({METRICS_PATH, HEALTH_PATH, READY_PATH})


class UiMetrics:
    """The metrics of one UI server, in a registry of their own.

    Args:
        registry: where they are registered (None: a new one).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            f"{PREFIX}_requests",
            "Requests answered, by route template and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            f"{PREFIX}_request_seconds",
            "Seconds to answer a request, by route template",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )

    def routes(self) -> list[Route]:
        """The ``/metrics``, ``/healthz`` and ``/readyz`` routes."""

        def metrics(request: Request) -> Response:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

        def healthy(request: Request) -> Response:
            return PlainTextResponse("ok\n")

        return [
            Route(METRICS_PATH, metrics),
            Route(HEALTH_PATH, healthy),
            Route(READY_PATH, healthy),
        ]


class RequestMetrics:
    """ASGI middleware counting and timing every HTTP request in a :class:`UiMetrics`."""

    def __init__(self, app: ASGIApp, metrics: UiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_see(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_see)
        finally:
            route = scope.get("route")
            # the template, never the path: run ids would make a series per run
            template = str(getattr(route, "path", "unmatched"))
            self.metrics.requests.labels(template, str(status)).inc()
            self.metrics.request_seconds.labels(template).observe(time.perf_counter() - started)
