"""The run filter language: what compiles, to what, and what is rejected where."""

from __future__ import annotations

import pytest

from runstream.query import FilterError, compile_filter, compile_order


def test_values_are_bound_never_spliced() -> None:
    evil = "x'; DROP TABLE runs; --"
    compiled = compile_filter(f"params.note = '{evil.replace(chr(39), chr(39) * 2)}'")
    assert "DROP" not in compiled.sql and evil in compiled.params
    assert compiled.params == ("note", evil)


def test_precedence_and_parentheses() -> None:
    compiled = compile_filter("status = 'A' OR (name = 'b' AND collection = 'c')")
    assert compiled.sql == "(r.status = ? OR (r.name = ? AND r.collection = ?))"
    assert compiled.params == ("A", "b", "c")


def test_numbers_compare_params_as_numbers_and_in_lists() -> None:
    compiled = compile_filter("params.lr >= 1e-3 AND tags.team NOT IN ('a', 'b')")
    assert "TRY_CAST(x.value AS DOUBLE) >= ?" in compiled.sql
    assert "x.value NOT IN (?, ?)" in compiled.sql
    assert compiled.params == ("lr", 0.001, "team", "a", "b")


def test_dotted_and_quoted_keys() -> None:
    assert compile_filter("params.optim.lr = '1'").params == ("optim.lr", "1")
    assert compile_filter("metrics.`val loss` < 2").params == ("val loss", 2.0)


def test_times_accept_iso_dates_and_milliseconds() -> None:
    assert compile_filter("start_time >= 1000").params == (1_000_000,)
    assert compile_filter("end_time < '1970-01-01T00:00:01'").params == (1_000_000,)


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("params.lr > 0.01; DROP TABLE runs", 16),
        ("params.lr = 1 UNION SELECT 1", 14),
        ("foo.bar = 1", 0),
        ("status ~ 'x'", 7),
        ("metrics.loss < 'low'", 15),
        ("(status = 'x'", 13),
        ("name LIKE 3", 10),
        ("start_time > 'yesterday'", 13),
        ("status = 'unterminated", 9),
    ],
)
def test_rejections_point_at_the_position(text: str, position: int) -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter(text)
    assert caught.value.position == position
    assert f"position {position}" in str(caught.value)


def test_order_by() -> None:
    compiled = compile_order(["metrics.loss DESC", "name"])
    assert compiled.sql.startswith("(SELECT x.value FROM metrics x")
    assert "DESC NULLS LAST" in compiled.sql and "r.name ASC" in compiled.sql
    assert compiled.params == ("loss",)
    with pytest.raises(FilterError):
        compile_order(["name; DROP TABLE runs"])


def test_3000_nested_parentheses_are_a_filter_error_not_a_recursion_error() -> None:
    from runstream.query.exceptions import FilterError
    from runstream.query.filters import compile_filter

    with pytest.raises(FilterError, match="nested more than 50"):
        compile_filter("(" * 3000 + "status = 'FINISHED'" + ")" * 3000)
    assert compile_filter("(" * 50 + "status = 'FINISHED'" + ")" * 50).sql
