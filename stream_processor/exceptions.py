"""Errors of the stream processor.

::

    RunstreamError
    └── ProcessorError
        ├── StateError          a state or event does not belong to the run it is applied to
        └── InvalidEventError   a decoded batch breaks a rule of the contract (dead-lettered)
"""

from __future__ import annotations

from runstream.errors import RunstreamError


class ProcessorError(RunstreamError):
    """Base of every error of the stream processor."""


class StateError(ProcessorError, ValueError):
    """A state or event was applied to a different run; the message names both run ids."""


class InvalidEventError(ProcessorError, ValueError):
    """A batch decoded but breaks a rule of the event contract.

    ``reason`` is a short machine-readable word used as the dead-letter reason.
    """

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason
