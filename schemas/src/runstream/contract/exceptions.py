"""Errors of the contract: the event schemas and codec, run state, the store's files.

::

    RunstreamError
    └── ContractError
        ├── EncodeError            a record does not fit its schema
        ├── DecodeError            bytes are not a message of any known schema version
        ├── InvalidEventError      a decoded batch breaks a rule of the contract (dead-lettered)
        ├── StateError             a state or event does not belong to the run it is applied to
        ├── UnsafeRunIdError       a run id is not one safe path segment
        ├── UnsafeArtifactPathError an artifact path leaves its run's folder
        └── CorruptPartError       a file in the store cannot be read as a metric file
"""

from __future__ import annotations

from runstream.core.errors import RunstreamError


class ContractError(RunstreamError):
    """Base of every error about the contract (events, run state, the store's files)."""


class EncodeError(ContractError, ValueError):
    """A record does not fit its schema; the message names the schema and the cause."""


class DecodeError(ContractError, ValueError):
    """Bytes are not a message of any known schema version.

    ``reason`` is a short machine-readable word (``empty``, ``framing``, ``fingerprint``,
    ``truncated``, ``registry``, ``body``) used as the dead-letter reason.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class InvalidEventError(ContractError, ValueError):
    """A batch decoded but breaks a rule of the event contract.

    ``reason`` is a short machine-readable word used as the dead-letter reason.
    """

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


class StateError(ContractError, ValueError):
    """A state or event was applied to a different run; the message names both run ids."""


class UnsafeRunIdError(ContractError, ValueError):
    """A run id is not one safe path segment."""


class UnsafeArtifactPathError(ContractError, ValueError):
    """An artifact path could leave its run's folder, or is not a plain relative path."""


class CorruptPartError(ContractError):
    """A file in the store is not a metric file (not Parquet, a metric column or its
    rollup unreadable); ``path`` names it, ``reason`` says what is wrong."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(f"{message} (path {path})")
        self.path = path
        self.reason = message
