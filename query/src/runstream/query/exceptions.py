"""Errors of the query layer; every one derives from :class:`QueryError`.

::

    QueryError
    ├── FilterError        a run filter or order-by clause does not parse (names the position)
    ├── RunNotFoundError   no run (or only a deleted one) has the id
    ├── SqlError           DuckDB rejected a ``sql()`` statement
    ├── PlotError          a plot could not be drawn or written
    ├── ArtifactNotFoundError  a run has no artifact at a path
    ├── ArtifactReadError  an artifact's object is missing, unreadable or not its sha256
    └── StoreReadError     a metric or rollup file cannot be read or is not Parquet
"""

from __future__ import annotations

from runstream.core.errors import RunstreamError


class QueryError(RunstreamError):
    """Base of every error the query layer raises."""


class FilterError(QueryError, ValueError):
    """A filter or order-by string is not in the run filter language.

    ``text`` is the string and ``position`` the 0-based index of the offending character;
    the message shows both, with a caret under the position.
    """

    def __init__(self, reason: str, text: str, position: int) -> None:
        self.reason = reason
        self.text = text
        self.position = position
        super().__init__(f"{reason} at position {position}:\n  {text}\n  {' ' * position}^")


class RunNotFoundError(QueryError, LookupError):
    """No visible run has this id (``run_id`` says which)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"run {run_id!r} not found (never started, or deleted)")


class SqlError(QueryError):
    """DuckDB rejected a statement; the message carries DuckDB's and the statement's start."""


class PlotError(QueryError):
    """A plot could not be drawn or written; the message names the file."""


class ArtifactNotFoundError(QueryError, LookupError):
    """Run ``run_id`` has no artifact at ``path`` (nor under it)."""

    def __init__(self, run_id: str, path: str) -> None:
        self.run_id = run_id
        self.path = path
        super().__init__(f"run {run_id!r} has no artifact at {path!r}")


class ArtifactReadError(QueryError):
    """An artifact's stored object cannot be read, or its bytes are not the recorded
    sha256; the message names the run, the path and the URI. Nothing is left at the
    destination for that file."""


class StoreReadError(QueryError):
    """A metric file of the store (or its footer rollup) cannot be fetched or decoded; ``path`` names it
    and the cause is kept."""

    def __init__(self, reason: str, path: str) -> None:
        self.path = path
        super().__init__(f"{reason} ({path})")
