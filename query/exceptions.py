"""Errors of the query layer; every one derives from :class:`QueryError`.

::

    QueryError
    ├── FilterError        a run filter or order-by clause does not parse (names the position)
    ├── RunNotFoundError   no run (or only a deleted one) has the id
    ├── SqlError           DuckDB rejected a ``sql()`` statement
    └── PlotError          a plot could not be drawn or written
"""

from __future__ import annotations

from runstream.errors import RunstreamError


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
