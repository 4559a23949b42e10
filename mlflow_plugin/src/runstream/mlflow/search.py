"""MLflow's run search grammar, parsed by MLflow's own ``SearchUtils``, rewritten into the query
layer's filter language (:mod:`runstream.query.filters`), which compiles it to DuckDB SQL with
every name and value a bound parameter. Nothing is filtered in Python.

MLflow's grammar is a conjunction of comparisons on ``metrics.``, ``params.``, ``tags.`` and
``attributes.`` (``run_id``, ``run_name``, ``status``, ``start_time``, ``end_time``); the
rewrite quotes every name with backquotes and every string with single quotes (a quote
doubled), and writes numbers as numbers, so the query layer's parser sees exactly the
comparisons MLflow's parser found.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.utils.search_utils import SearchUtils

_ENTITIES = {"metric": "metrics", "parameter": "params", "tag": "tags"}
_ATTRIBUTES = {
    "run_id": "run_id",
    "run_name": "name",
    "status": "status",
    "start_time": "start_time",
    "end_time": "end_time",
}
_NUMERIC_ATTRIBUTES = {"start_time", "end_time"}


def _name(key: str) -> str:
    if "`" in key:
        raise MlflowException(
            f"a key with a backquote is not searchable here: {key!r}", INVALID_PARAMETER_VALUE
        )
    return f"`{key}`"


def _string(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _number(value: Any, key: str) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise MlflowException(
            f"Expected numeric value type for metric or time {key!r}, got {value!r}",
            INVALID_PARAMETER_VALUE,
        ) from error
    if math.isnan(number) or math.isinf(number):
        raise MlflowException(f"{key!r} cannot be compared with {value!r}", INVALID_PARAMETER_VALUE)
    return repr(int(number)) if number.is_integer() else repr(number)


def _field(kind: str, key: str) -> tuple[str, bool]:
    """The query-language field of an MLflow identifier, and whether it compares numbers."""
    if kind in _ENTITIES:
        return f"{_ENTITIES[kind]}.{_name(key)}", kind == "metric"
    if kind == "attribute" and key in _ATTRIBUTES:
        return f"attributes.{_ATTRIBUTES[key]}", key in _NUMERIC_ATTRIBUTES
    raise MlflowException(
        f"Runstream cannot search runs by {kind} {key!r}: use metrics., params., tags. or "
        f"attributes.{{{', '.join(sorted(_ATTRIBUTES))}}}",
        INVALID_PARAMETER_VALUE,
    )


def comparison(parsed: dict[str, Any]) -> str:
    """One comparison of ``SearchUtils.parse_search_filter`` in the query language."""
    field, numeric = _field(parsed["type"], parsed["key"])
    operator = str(parsed["comparator"]).upper()
    value = parsed["value"]
    if operator in ("IN", "NOT IN"):
        items = ", ".join(_string(item) for item in value)
        return f"{field} {operator} ({items})"
    literal = _number(value, parsed["key"]) if numeric else _string(value)
    return f"{field} {operator} {literal}"


def run_filter(filter_string: str | None, experiment_ids: Sequence[str]) -> str:
    """The query-language filter of MLflow's ``filter_string`` within ``experiment_ids``
    (a run's collection is its experiment id).

    Raises:
        MlflowException: the filter is malformed or names what Runstream does not search
            (INVALID_PARAMETER_VALUE, MLflow's own messages for its grammar).
    """
    clauses = [comparison(c) for c in SearchUtils.parse_search_filter(filter_string or "")]
    ids = ", ".join(_string(experiment_id) for experiment_id in experiment_ids)
    clauses.insert(0, f"attributes.collection IN ({ids})")
    return " AND ".join(clauses)


def run_order(order_by: Sequence[str] | None) -> list[str]:
    """The query-language order-by clauses of MLflow's ``order_by`` (the query layer adds
    MLflow's default and tie-breaker: start time, newest first, then run id; a run missing a
    key sorts last).

    Raises:
        MlflowException: a clause is malformed (MLflow's message) or names an unknown field.
    """
    clauses = []
    for text in order_by or ():
        kind, key, ascending = SearchUtils.parse_order_by_for_search_runs(text)
        field, _ = _field(kind, key)
        clauses.append(f"{field} {'ASC' if ascending else 'DESC'}")
    return clauses
