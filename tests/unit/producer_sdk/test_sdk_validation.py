"""Bad input raises a ValidationError naming the field and the limit; good input passes."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from runstream.contract import MetricLogged, ParamLogged, TagSet
from runstream.core.errors import RunstreamError
from runstream.tracking import Client, ValidationError
from runstream.tracking import validation as check

from .conftest import payloads


@pytest.mark.parametrize(
    ("key", "limit"),
    [
        ("", "non-empty string"),
        ("x" * 251, "at most 250 characters"),
        ("loss!", "characters in"),
        ("a\nb", "characters in"),
        ("é", "characters in"),
        (None, "non-empty string"),
        (3, "non-empty string"),
    ],
)
def test_bad_keys_name_field_and_limit(key: object, limit: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check.check_key(key)
    assert caught.value.field == "key"
    assert caught.value.limit.startswith(limit)
    assert isinstance(caught.value, RunstreamError)


@pytest.mark.parametrize("key", ["a", "x" * 250, "train/loss", "a-b_c.d e:f", "A0"])
def test_good_keys_pass(key: str) -> None:
    assert check.check_key(key) == key


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1.0),
        (True, 1.0),
        (0.25, 0.25),
        (np.float32(0.5), 0.5),
        (np.int64(7), 7.0),
        (np.array(2.5), 2.5),
        (Fraction(1, 4), 0.25),
    ],
)
def test_numbers_are_accepted(value: object, expected: float) -> None:
    assert check.metric_value(value) == expected


def test_nan_and_infinities_are_kept() -> None:
    assert math.isnan(check.metric_value(float("nan")))
    assert check.metric_value(float("inf")) == math.inf
    assert check.metric_value(np.float64("-inf")) == -math.inf


@pytest.mark.parametrize("value", ["1.0", None, [1.0], np.array([1.0, 2.0]), 1j, b"1", {}])
def test_non_numbers_are_rejected(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        check.metric_value(value, "loss")
    assert caught.value.field == "value"
    assert "loss" in str(caught.value)


def test_param_and_tag_value_limits() -> None:
    assert check.param_value("x" * 6000) == "x" * 6000
    with pytest.raises(ValidationError, match="6001 characters") as caught:
        check.param_value("x" * 6001)
    assert caught.value.limit == "at most 6000 characters"
    assert check.tag_value("y" * 5000) == "y" * 5000
    with pytest.raises(ValidationError, match="more than 5000"):
        check.tag_value("y" * 5001)
    assert check.param_value(0.1) == "0.1"


@pytest.mark.parametrize("run_id", ["", "../etc", "a/b", ".hidden", "x" * 129, "a b"])
def test_unsafe_run_ids_are_rejected(run_id: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check.run_id(run_id)
    assert caught.value.field == "run_id"


@pytest.mark.parametrize("step", [1.5, "3", None])
def test_steps(step: object) -> None:
    if step is None:
        assert check.step_value(step) == 0
        return
    with pytest.raises(ValidationError, match="step"):
        check.step_value(step)
    assert check.step_value(np.int32(4)) == 4
    assert check.step_value(np.array(5)) == 5
    with pytest.raises(ValidationError, match="64-bit range"):
        check.step_value(2**63)


def test_flatten_nests_to_dotted_keys() -> None:
    assert check.flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}


def test_rejected_call_leaves_earlier_events_alone(local_client: Client) -> None:
    run = local_client.start_run(run_id="val-1", capture_code=False)
    run.log_metric("loss", 1.0, step=1)
    run.log_param("lr", 0.1)
    with pytest.raises(ValidationError):
        run.log_metric("loss", "high", step=2)
    with pytest.raises(ValidationError):
        run.log_params({"ok": 1, "bad key!": 2})  # all-or-nothing: "ok" is not logged
    with pytest.raises(ValidationError, match="more than 5000"):
        run.set_tag("t", "z" * 5001)
    with pytest.raises(ValidationError, match="step"):
        run.log_metric("loss", 1.0, step=2**64)
    run.log_metric("loss", 2.0, step=3)
    run.end()
    points = payloads(local_client, MetricLogged)
    assert [(p.key, p.value, p.step) for p in points] == [("loss", 1.0, 1), ("loss", 2.0, 3)]
    assert payloads(local_client, ParamLogged) == [ParamLogged("lr", "0.1")]
    assert payloads(local_client, TagSet) == []
