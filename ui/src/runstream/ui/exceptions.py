"""Errors of the web UI; every one derives from :class:`UiError`.

::

    UiError
    ├── BadParameterError   a request parameter is missing, unknown or out of range (HTTP 400)
    ├── AssetsMissingError  the built front end (runstream/ui/static) is not there: run its build step
    └── UnsafeBindError     a non-loopback address without a token
"""

from __future__ import annotations

from runstream.core.errors import RunstreamError


class UiError(RunstreamError):
    """Base of every error the UI raises."""


class BadParameterError(UiError, ValueError):
    """A request parameter is missing, unknown, malformed or out of range.

    ``field`` names the parameter; the message says what is allowed.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class AssetsMissingError(UiError):
    """The built front end is missing (``runstream/ui/static/index.html``); the message says how to
    build it."""


class UnsafeBindError(UiError):
    """The server was asked to listen on a non-loopback address without a token."""
