"""Errors of the stream processor.

::

    RunstreamError
    └── ProcessorError      the processor's own failures (replay, the faust app)

Bad events are the contract's :class:`~runstream.contract.exceptions.InvalidEventError` and
:class:`~runstream.contract.exceptions.DecodeError`: they are dead-lettered, never raised.
"""

from __future__ import annotations

from runstream.core.errors import RunstreamError


class ProcessorError(RunstreamError):
    """Base of every error of the stream processor."""
