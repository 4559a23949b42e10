"""Runstream's web UI: a Starlette app over the query engine, with a built front end.

``runstream ui`` serves it; :func:`create_app` builds it over a :class:`Backend`
(``Backend.from_settings(Settings.resolve())``).
"""

from runstream.ui.app import create_app
from runstream.ui.backend import Backend
from runstream.ui.exceptions import AssetsMissingError, BadParameterError, UiError, UnsafeBindError
from runstream.ui.logs import LogEntry, RunLogs

__all__ = [
    "AssetsMissingError",
    "Backend",
    "BadParameterError",
    "LogEntry",
    "RunLogs",
    "UiError",
    "UnsafeBindError",
    "create_app",
]
