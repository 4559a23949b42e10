"""Request parameter validation: unknown, repeated, malformed and out-of-range values are
refused with the parameter's name."""

from __future__ import annotations

import pytest

from runstream.ui.exceptions import BadParameterError
from runstream.ui.params import Params, metric_key, run_id, run_ids, step_range


def test_unknown_parameter_is_named() -> None:
    with pytest.raises(BadParameterError) as caught:
        Params([("run", "a"), ("sql", "DROP")], ("run", "key"))
    assert caught.value.field == "sql" and "key, run" in str(caught.value)


def test_integer_bounds_and_format() -> None:
    query = Params([("max_points", "0"), ("start_step", "x")], ("max_points", "start_step"))
    with pytest.raises(BadParameterError, match="between 1 and 100"):
        query.integer("max_points", default=10, low=1, high=100)
    with pytest.raises(BadParameterError, match="must be an integer") as caught:
        query.integer("start_step", default=None)
    assert caught.value.field == "start_step"
    assert Params([], ("a",)).integer("a", default=7) == 7
    assert Params([("a", "-5")], ("a",)).integer("a", default=None) == -5


def test_repeated_single_value_is_refused_and_lists_are_bounded() -> None:
    with pytest.raises(BadParameterError, match="given 2 times"):
        Params([("key", "a"), ("key", "b")], ("key",)).text("key")
    with pytest.raises(BadParameterError, match="at most 2 values"):
        Params([("run", "a"), ("run", "b"), ("run", "c")], ("run",)).texts("run", max_count=2)
    with pytest.raises(BadParameterError, match="at most 5 characters"):
        Params([("filter", "x" * 6)], ("filter",)).text("filter", max_length=5)
    with pytest.raises(BadParameterError, match="required"):
        Params([], ("key",)).text("key", required=True)


def test_run_ids_keys_and_ranges() -> None:
    assert run_ids(["a", "b", "a"]) == ["a", "b"]
    with pytest.raises(BadParameterError, match="safe path segment"):
        run_id("../etc")
    with pytest.raises(BadParameterError, match="at least one"):
        run_ids([])
    assert metric_key("train/loss") == "train/loss"
    with pytest.raises(BadParameterError) as caught:
        metric_key("loss;drop")
    assert caught.value.field == "key" and "outside" in str(caught.value)
    with pytest.raises(BadParameterError, match="start_step"):
        step_range(10, 5)
    assert step_range(None, 5) == (None, 5)
