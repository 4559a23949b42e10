"""The query package's public surface: a sorted ``__all__`` of names that exist."""

from __future__ import annotations

from runstream import query
from runstream.core.errors import RunstreamError
from runstream.query.exceptions import (
    FilterError,
    PlotError,
    QueryError,
    RunNotFoundError,
    SqlError,
)


def test_all_is_sorted_and_resolves() -> None:
    assert query.__all__ == sorted(query.__all__)
    assert all(hasattr(query, name) for name in query.__all__)


def test_errors_derive_from_the_root() -> None:
    for error in (FilterError, PlotError, RunNotFoundError, SqlError):
        assert issubclass(error, QueryError)
    assert issubclass(QueryError, RunstreamError)
    assert "position 3" in str(FilterError("bad", "abcdef", 3))
