"""Errors of the compactor.

::

    RunstreamError
    └── CompactorError            anything the compactor raises
        └── StoreWriteError       the destination refused a write, listing, read or delete
            └── StoreAccessError  credentials or permissions refused: not retried
"""

from __future__ import annotations

from runstream.core.errors import RunstreamError


class CompactorError(RunstreamError):
    """Base of every error the compactor raises."""


class StoreWriteError(CompactorError):
    """The destination failed an operation; ``path`` names the file or folder concerned.

    Transient (the S3 server is down, a timeout): the worker retries with backoff and
    commits nothing it has not written.
    """

    def __init__(self, message: str, path: str) -> None:
        super().__init__(f"{message} (path {path})")
        self.path = path


class StoreAccessError(StoreWriteError):
    """The store refused our credentials or permissions: not transient, so not retried.
    The message names the path and what to check."""
