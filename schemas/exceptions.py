"""Errors of the event contract."""

from __future__ import annotations

from runstream.errors import RunstreamError


class SchemaError(RunstreamError):
    """Base of every error about the event contract."""


class EncodeError(SchemaError, ValueError):
    """A record does not fit its schema; the message names the schema and the cause."""


class DecodeError(SchemaError, ValueError):
    """Bytes are not a message of any known schema version.

    ``reason`` is a short machine-readable word (``framing``, ``fingerprint``, ``truncated``,
    ``registry``, ``body``) used as the dead-letter reason.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
