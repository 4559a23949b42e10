"""The UI's HTTP application (Starlette): JSON endpoints over the query engine and the pages.

Endpoints (all GET; every parameter validated, unknown ones rejected; errors are JSON
``{"error", "field", "message"}`` with 400 for a bad parameter or filter, 404 for an unknown
run, 503 when the event log cannot be read)::

    /api/info                                        tracking URI and store
    /api/runs?filter=&order_by=&max_results=         runs (the filter language of runstream.query.filters)
    /api/runs/{run_id}                               one run: attributes, params, tags, labels,
                                                     latest metrics
    /api/runs/{run_id}/logs?level=&limit=            its log lines (newest ``limit``)
    /api/history?run=&key=&start_step=&end_step=&max_points=
                                                     one metric, min/max/last buckets
    /api/compare?run=&run=&key=&start_step=&end_step=&max_points=
                                                     one metric of several runs

``/metrics`` (Prometheus), ``/healthz`` and ``/readyz`` answer without the token
(:mod:`runstream.ui.metrics`).

Pages ``/``, ``/runs/{run_id}`` and ``/compare`` are the built front end's index.html;
``/assets/*`` its scripts and styles. No endpoint takes SQL.

With a token, every request must carry it: ``Authorization: Bearer <token>``, or the cookie
set by opening any page once with ``?token=<token>``. Requests whose Host header is not the
server's own name are refused (no DNS rebinding onto a local UI).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from runstream.contract.exceptions import UnsafeRunIdError
from runstream.contract.limits import LOG_LEVELS
from runstream.core.errors import RunstreamError
from runstream.query.exceptions import FilterError, QueryError, RunNotFoundError
from runstream.ui import params as check
from runstream.ui import serialize
from runstream.ui.assets import static_dir
from runstream.ui.backend import Backend
from runstream.ui.exceptions import BadParameterError
from runstream.ui.metrics import OPEN_PATHS, RequestMetrics, UiMetrics
from runstream.ui.params import Params

logger = logging.getLogger(__name__)

TOKEN_COOKIE = "runstream_ui_token"
DEFAULT_POINTS = 1000
MAX_POINTS = 20_000
MAX_COMPARE_RUNS = 20
MAX_RUNS = 10_000
MAX_LOG_LINES = 10_000
_SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'"
    ),
}
_Endpoint = Callable[[Request], Response]


def _error(status: int, error: Exception, field: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": type(error).__name__, "field": field, "message": str(error)}, status_code=status
    )


def _guarded(endpoint: Callable[[Request], Any]) -> _Endpoint:
    """The endpoint with errors mapped to JSON 4xx/5xx answers."""

    def run(request: Request) -> Response:
        try:
            return JSONResponse(endpoint(request))
        except BadParameterError as error:
            return _error(400, error, error.field)
        except FilterError as error:
            field = "filter" if error.text == request.query_params.get("filter") else "order_by"
            return _error(400, error, field)
        except UnsafeRunIdError as error:
            return _error(400, error, "run")
        except RunNotFoundError as error:
            return _error(404, error, "run")
        except QueryError as error:
            return _error(400, error)
        except RunstreamError as error:
            logger.warning("%s: %s", request.url.path, error)
            return _error(503, error)

    run.__name__ = endpoint.__name__
    return run


class Api:
    """The JSON endpoints over a :class:`Backend`."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def info(self, request: Request) -> dict[str, Any]:
        """Where the data comes from."""
        Params(request.query_params.multi_items(), ())
        return self.backend.info()

    def runs(self, request: Request) -> dict[str, Any]:
        """The runs matching ``filter``, sorted by each ``order_by`` clause."""
        query = Params(request.query_params.multi_items(), ("filter", "order_by", "max_results"))
        found = self.backend.search_runs(
            query.text("filter"),
            query.texts("order_by", max_count=10, max_length=300),
            query.integer("max_results", default=1000, low=1, high=MAX_RUNS) or 1000,
        )
        return {"count": len(found), "runs": [serialize.run(run) for run in found]}

    def run(self, request: Request) -> dict[str, Any]:
        """One run."""
        Params(request.query_params.multi_items(), ())
        run_id = check.run_id(request.path_params["run_id"])
        return serialize.run(self.backend.get_run(run_id))

    def logs(self, request: Request) -> dict[str, Any]:
        """The newest ``limit`` log lines of a run, only the given ``level``s if any."""
        query = Params(request.query_params.multi_items(), ("level", "limit"))
        run_id = check.run_id(request.path_params["run_id"])
        levels = query.texts("level", max_count=len(LOG_LEVELS), max_length=20)
        for level in levels:
            if level not in LOG_LEVELS:
                raise BadParameterError("level", f"{level!r} is not one of {LOG_LEVELS}")
        limit = query.integer("limit", default=1000, low=1, high=MAX_LOG_LINES) or 1000
        self.backend.get_run(run_id)  # 404 for an unknown run
        lines = self.backend.logs(run_id, frozenset(levels) if levels else None)
        return {
            "count": len(lines),
            "lines": [
                {
                    "time_us": line.time_us,
                    "level": line.level,
                    "message": line.message,
                    "metadata": dict(line.metadata),
                    "rank": line.rank,
                }
                for line in lines[-limit:]
            ],
        }

    def _range(self, query: Params) -> tuple[int | None, int | None, int]:
        start, end = check.step_range(
            query.integer("start_step", default=None), query.integer("end_step", default=None)
        )
        points = query.integer("max_points", default=DEFAULT_POINTS, low=1, high=MAX_POINTS)
        return start, end, points or DEFAULT_POINTS

    def history(self, request: Request) -> dict[str, Any]:
        """One metric of one run, at most ``max_points`` min/max/last buckets."""
        query = Params(
            request.query_params.multi_items(),
            ("run", "key", "start_step", "end_step", "max_points"),
        )
        run_id = check.run_id(query.text("run", required=True) or "")
        key = check.metric_key(query.text("key", required=True))
        start, end, points = self._range(query)
        table = self.backend.history(run_id, key, start, end, points)
        return {"run_id": run_id, "key": key, "max_points": points} | serialize.history(table)

    def compare(self, request: Request) -> dict[str, Any]:
        """One metric of several runs."""
        query = Params(
            request.query_params.multi_items(),
            ("run", "key", "start_step", "end_step", "max_points"),
        )
        run_ids = check.run_ids(query.texts("run", max_count=MAX_COMPARE_RUNS, max_length=128))
        key = check.metric_key(query.text("key", required=True))
        start, end, points = self._range(query)
        series = [
            {"run_id": run_id}
            | serialize.history(self.backend.history(run_id, key, start, end, points))
            for run_id in run_ids
        ]
        return {"key": key, "max_points": points, "series": series}


class TokenGate:
    """ASGI middleware: every request must carry the token (header or cookie); a page opened
    with ``?token=`` gets the cookie and is redirected to itself without it."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    def _matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if request.url.path in OPEN_PATHS:  # probes and scrapers carry no token
            await self.app(scope, receive, send)
            return
        bearer = request.headers.get("authorization", "")
        if self._matches(bearer.removeprefix("Bearer ").strip() if bearer else None) or (
            self._matches(request.cookies.get(TOKEN_COOKIE))
        ):
            await self.app(scope, receive, send)
            return
        given = request.query_params.get("token")
        if self._matches(given) and not request.url.path.startswith("/api/"):
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            response: Response = RedirectResponse(target, status_code=303)
            response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
        else:
            response = JSONResponse(
                {
                    "error": "Unauthorized",
                    "field": "token",
                    "message": "this UI needs its token: open a page with ?token=<token> or "
                    "send 'Authorization: Bearer <token>'",
                },
                status_code=401,
            )
        await response(scope, receive, send)


class SecurityHeaders:
    """ASGI middleware adding the security headers (CSP, nosniff, no framing) to responses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.encode(), v.encode()) for k, v in _SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(
    backend: Backend,
    *,
    token: str | None = None,
    allowed_hosts: Sequence[str] = ("127.0.0.1", "localhost", "::1"),
    static: Path | None = None,
    metrics: UiMetrics | None = None,
) -> Starlette:
    """The UI application over ``backend``, with ``/metrics``, ``/healthz`` and ``/readyz``
    (open without the token).

    Args:
        backend: the engine and logs to answer from (closed when the app shuts down).
        token: when given, every request must carry it.
        allowed_hosts: host names the Host header may carry ("*": any).
        static: the built front end (default: the package's ``static`` folder).
        metrics: where requests are counted (None: a registry of the app's own).

    Raises:
        AssetsMissingError: the built front end is missing.
    """
    folder = static_dir() if static is None else static_dir(static)
    index = folder / "index.html"
    api = Api(backend)
    metrics = metrics or UiMetrics()

    def page(request: Request) -> Response:
        return FileResponse(index, headers={"cache-control": "no-cache"})

    def no_icon(request: Request) -> Response:
        return Response(status_code=204)

    routes = [
        *metrics.routes(),
        Route("/favicon.ico", no_icon),
        Route("/api/info", _guarded(api.info)),
        Route("/api/runs", _guarded(api.runs)),
        Route("/api/runs/{run_id}", _guarded(api.run)),
        Route("/api/runs/{run_id}/logs", _guarded(api.logs)),
        Route("/api/history", _guarded(api.history)),
        Route("/api/compare", _guarded(api.compare)),
        Route("/", page),
        Route("/runs/{run_id}", page),
        Route("/compare", page),
        Mount("/assets", StaticFiles(directory=folder / "assets")),
    ]
    middleware = [
        Middleware(RequestMetrics, metrics=metrics),
        Middleware(SecurityHeaders),
        Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)),
    ]
    if token:
        middleware.append(Middleware(TokenGate, token=token))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        backend.close()

    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
