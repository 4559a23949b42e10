"""Issue 17's SDK cases: every bad input is a ValidationError naming its field (never an
OverflowError, TypeError or RecursionError); extreme legal input is accepted."""

from __future__ import annotations

from typing import Any

import pytest

from runstream.contract import MetricLogged
from runstream.contract.limits import TIMESTAMP_MS_RANGE
from runstream.tracking import Client, ValidationError
from runstream.tracking import validation as check

from .conftest import payloads


def _nested(levels: int) -> dict[str, Any]:
    params: dict[str, Any] = {"leaf": 1}
    for _ in range(levels):
        params = {"a": params}
    return params


def _nested_list(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


def test_a_metric_value_past_float64_names_the_value(local_client: Client) -> None:
    run = local_client.start_run(run_id="x-value", capture_code=False)
    with pytest.raises(ValidationError) as caught:
        run.log_metric("loss", 10**400)
    assert caught.value.field == "value"
    with pytest.raises(ValidationError) as caught:
        run.log_metrics({"loss": -(10**400)})
    assert caught.value.field == "value"


@pytest.mark.parametrize("key", [["loss"], {"a": 1}, {"a"}, b"loss", 3.5])
def test_a_key_of_another_type_names_the_key(local_client: Client, key: Any) -> None:
    run = local_client.start_run(run_id="x-key", capture_code=False)
    with pytest.raises(ValidationError) as caught:
        run.log_metric(key, 1.0)
    assert caught.value.field == "key"
    with pytest.raises(ValidationError) as caught:
        run.log_metrics([{"name": key, "value": 1.0}])
    assert caught.value.field == "key"


@pytest.mark.parametrize("levels", [1_000, 5_000])
def test_deeply_nested_params_name_params(local_client: Client, levels: int) -> None:
    run = local_client.start_run(run_id="x-nest", capture_code=False)
    with pytest.raises(ValidationError) as caught:
        run.log_params(_nested(levels))
    assert caught.value.field == "params"


def test_a_self_containing_mapping_is_refused() -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(ValidationError, match="nested too deeply"):
        check.flatten(loop)


def test_a_value_too_deep_to_print_names_its_field(local_client: Client) -> None:
    run = local_client.start_run(run_id="x-deep", capture_code=False)
    with pytest.raises(ValidationError) as caught:
        run.log_param("p", _nested_list(100_000))
    assert caught.value.field == "value"


@pytest.mark.parametrize(
    ("timestamp", "unit"),
    [
        (1_700_000_000, "seconds"),
        (1_700_000_000.5, "seconds"),
        (1_700_000_000_000_000, "µs"),
        (1_700_000_000_000_000_000, "ns"),
        (0, None),
        (-5, None),
    ],
)
def test_a_timestamp_in_another_unit_names_ms(
    local_client: Client, timestamp: float, unit: str | None
) -> None:
    run = local_client.start_run(run_id="x-time", capture_code=False)
    with pytest.raises(ValidationError) as caught:
        run.log_metric("loss", 1.0, timestamp=timestamp)
    assert caught.value.field == "timestamp"
    assert "milliseconds" in caught.value.limit
    assert "(ms)" in str(caught.value)
    if unit is not None:
        assert f"looks like {unit}" in str(caught.value)


def test_extreme_legal_steps_and_plausible_timestamps_are_accepted(
    local_client: Client,
) -> None:
    run = local_client.start_run(run_id="x-steps", capture_code=False)
    low, high = TIMESTAMP_MS_RANGE
    run.log_metric("loss", 1.0, step=-(2**63), timestamp=low)
    run.log_metric("loss", 2.0, step=2**63 - 1, timestamp=high)
    run.log_metric("loss", 3.0, step=-1)
    run.end()
    points = payloads(local_client, MetricLogged)
    assert [p.step for p in points] == [-(2**63), 2**63 - 1, -1]


@pytest.mark.parametrize("run_id", ["abc\n", "abc\r", "\nabc"])
def test_a_run_id_with_a_newline_is_refused(local_client: Client, run_id: str) -> None:
    with pytest.raises(ValidationError) as caught:
        local_client.start_run(run_id=run_id, capture_code=False)
    assert caught.value.field == "run_id"
