"""Input rules of every SDK call: checked on the caller's thread, before anything is queued.

The limits themselves are the contract's (:mod:`runstream.contract.limits`): the readers of
the event log refuse the same things. A run may log any number of metric keys, params, tags,
labels and artifacts; the run state published on ``runstream.runs`` stays under 1 MB
(``MAX_STATE_BYTES``) by carrying the first keys by name of each (``MAX_STATE_METRIC_KEYS``,
``MAX_STATE_PARAM_KEYS``, ``MAX_STATE_TAG_KEYS``, ``MAX_STATE_ARTIFACTS``, then
``metrics_truncated``, ``params_truncated``, ...) and values cut to ``MAX_STATE_VALUE_BYTES``
(the register says ``cut``); every key and whole value stays in the store, the history and
the query layer's views.

Each check raises :class:`ValidationError` naming the field and the limit; a rejected call
leaves the run's earlier events untouched.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from runstream.contract.exceptions import UnsafeRunIdError
from runstream.contract.identifiers import check_run_id
from runstream.contract.limits import KEY_CHARACTERS as KEY_CHARACTERS
from runstream.contract.limits import KEY_PATTERN
from runstream.contract.limits import LOG_LEVELS as LOG_LEVELS
from runstream.contract.limits import MAX_KEY_LENGTH as MAX_KEY_LENGTH
from runstream.contract.limits import MAX_PARAM_KEY_LENGTH as MAX_PARAM_KEY_LENGTH
from runstream.contract.limits import MAX_PARAM_LENGTH as MAX_PARAM_LENGTH
from runstream.contract.limits import MAX_TAG_LENGTH as MAX_TAG_LENGTH
from runstream.contract.limits import STEP_RANGE as STEP_RANGE
from runstream.contract.limits import TIMESTAMP_MS_RANGE as TIMESTAMP_MS_RANGE
from runstream.tracking.exceptions import ValidationError

_KEY = KEY_PATTERN
RUN_STATUSES = ("FINISHED", "FAILED", "KILLED")
_STATUS_ALIASES = {
    "SUCCEEDED": "FINISHED",
    "DONE": "FINISHED",
    "STOPPED": "KILLED",
    "COMPLETED": "FINISHED",
    "CANCELLED": "KILLED",
}
"""Polyaxon's and ML-Dash's end statuses, as Runstream's."""


def check_key(
    key: Any, field: str = "key", run_id: str | None = None, limit: int = MAX_KEY_LENGTH
) -> str:
    """Return ``key`` if it is a valid metric/param/tag key.

    Raises:
        ValidationError: not a string, empty, longer than ``limit`` (250) characters, or with
            a character outside ``[A-Za-z0-9_-./ :]``.
    """
    if not isinstance(key, str) or not key:
        raise ValidationError(
            field,
            "non-empty string",
            f"must be a non-empty string, got {type(key).__name__} {f'{key!r}'[:40]}",
            run_id,
        )
    if len(key) > limit:
        raise ValidationError(
            field,
            f"at most {limit} characters",
            f"{key[:40]!r}... has {len(key)} characters, more than {limit}",
            run_id,
        )
    if not _KEY.fullmatch(key):
        bad = sorted({c for c in key if not _KEY.fullmatch(c)})
        raise ValidationError(
            field,
            f"characters in {KEY_CHARACTERS}",
            f"{key!r} has characters {bad} outside {KEY_CHARACTERS}",
            run_id,
        )
    return key


class KeyCache:
    """Remembers keys already checked, so the hot path pays one set lookup per call."""

    def __init__(self, limit: int = 100_000) -> None:
        self.valid: set[str] = set()
        self._limit = limit

    def check(self, key: Any, field: str = "key", run_id: str | None = None) -> str:
        """Like :func:`check_key`, remembering valid keys (up to a bound).

        Raises:
            ValidationError: see :func:`check_key`.
        """
        check_key(key, field, run_id)
        if len(self.valid) < self._limit:
            self.valid.add(key)
        return str(key)


def metric_value(value: Any, key: str = "value", run_id: str | None = None) -> float:
    """``value`` as a float: numbers, bools, numpy scalars and 0-d arrays/tensors are
    accepted; NaN and ±inf are kept as they are.

    Raises:
        ValidationError: anything else (strings, None, containers, arrays of more than one
            element, complex numbers).
    """
    if isinstance(value, numbers.Real):  # int, float, bool, numpy real scalars, Fraction
        try:
            return float(value)
        except OverflowError as error:
            raise _too_large(value, key, run_id) from error
    ndim = getattr(value, "ndim", None)
    if ndim == 0 and not isinstance(value, str | bytes):
        try:
            result = float(value)
        except OverflowError as error:
            raise _too_large(value, key, run_id) from error
        except (TypeError, ValueError) as error:
            raise _not_numeric(value, key, run_id) from error
        return result
    raise _not_numeric(value, key, run_id)


def _too_large(value: Any, key: str, run_id: str | None) -> ValidationError:
    shown = (
        f"{value!r}"[:40]
        if not isinstance(value, int)
        else f"an integer of {value.bit_length()} bits"
    )
    return ValidationError(
        "value",
        "a real number within the float64 range (about ±1.8e308)",
        f"metric {key!r} value {shown} does not fit a float64",
        run_id,
    )


def _not_numeric(value: Any, key: str, run_id: str | None) -> ValidationError:
    return ValidationError(
        "value",
        "a real number",
        f"metric {key!r} value {value!r} ({type(value).__name__}) is not a real number, a "
        "numpy scalar or a 0-d tensor",
        run_id,
    )


def step_value(step: Any, run_id: str | None = None) -> int:
    """``step`` as an int (None is 0).

    Raises:
        ValidationError: not an integer or outside the 64-bit range.
    """
    if step is None:
        return 0
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        try:  # 0-d integer arrays and tensors
            if getattr(step, "ndim", None) != 0:
                raise TypeError(type(step).__name__)
            result = operator.index(step)
        except TypeError as error:
            raise ValidationError(
                "step", "an integer", f"step {step!r} is not an integer", run_id
            ) from error
    else:
        result = int(step)
    if not STEP_RANGE[0] <= result <= STEP_RANGE[1]:
        raise ValidationError(
            "step",
            "-2**63 to 2**63-1",
            f"step {result} is outside the 64-bit range -2**63 to 2**63-1",
            run_id,
        )
    return result


def timestamp_ms(timestamp: Any, run_id: str | None = None) -> int:
    """``timestamp`` (milliseconds since the epoch) as an int.

    Raises:
        ValidationError: not an integer, float or datetime, or outside the plausible range
            of milliseconds (1990 to 2200: a time in seconds, µs or ns is refused).
    """
    if isinstance(timestamp, datetime):
        timestamp = int(timestamp.timestamp() * 1000)
    if isinstance(timestamp, float) and math.isfinite(timestamp):
        timestamp = int(timestamp)
    if isinstance(timestamp, bool) or not isinstance(timestamp, numbers.Integral):
        raise ValidationError(
            "timestamp",
            "integer milliseconds",
            f"timestamp {timestamp!r} is not integer milliseconds since the epoch",
            run_id,
        )
    result = int(timestamp)
    low, high = TIMESTAMP_MS_RANGE
    if not low <= result <= high:
        unit = "seconds" if result < low and result > low // 1000 else None
        if result > high:
            unit = "µs" if result <= high * 1000 else "ns" if result <= high * 10**6 else None
        hint = f" (it looks like {unit})" if unit else ""
        raise ValidationError(
            "timestamp",
            f"milliseconds since the epoch, {low} to {high} (1990 to 2200)",
            f"timestamp {result} is not a plausible time in milliseconds since the epoch"
            f"{hint}: give milliseconds (ms)",
            run_id,
        )
    return result


def text_value(value: Any, field: str, limit: int, run_id: str | None = None) -> str:
    """``str(value)`` if it has at most ``limit`` characters.

    Raises:
        ValidationError: longer than ``limit`` after ``str()``.
    """
    try:
        text = value if isinstance(value, str) else str(value)
    except RecursionError as error:
        raise ValidationError(
            field, "a value str() can print", "the value is nested too deeply to print", run_id
        ) from error
    if len(text) > limit:
        raise ValidationError(
            field,
            f"at most {limit} characters",
            f"{text[:40]!r}... has {len(text)} characters after str(), more than {limit}",
            run_id,
        )
    return text


def param_value(value: Any, run_id: str | None = None) -> str:
    """A param value as a string of at most 6000 characters.

    Raises:
        ValidationError: longer than 6000 characters after ``str()``.
    """
    return text_value(value, "value", MAX_PARAM_LENGTH, run_id)


def tag_value(value: Any, run_id: str | None = None) -> str:
    """A tag or label value as a string of at most 5000 characters.

    Raises:
        ValidationError: longer than 5000 characters after ``str()``.
    """
    return text_value(value, "value", MAX_TAG_LENGTH, run_id)


def run_id(value: Any) -> str:
    """``value`` if it is a run id safe as one path segment.

    Raises:
        ValidationError: it is not (the message gives the rule).
    """
    try:
        return check_run_id(value)
    except UnsafeRunIdError as error:
        raise ValidationError("run_id", "one safe path segment", str(error)) from error


def run_status(status: Any, run: str | None = None) -> str:
    """``status`` upper-cased if it is FINISHED, FAILED or KILLED (Polyaxon's succeeded and
    done are FINISHED, stopped is KILLED).

    Raises:
        ValidationError: any other value.
    """
    text = str(status).upper()
    text = _STATUS_ALIASES.get(text, text)
    if text not in RUN_STATUSES:
        raise ValidationError(
            "status", "/".join(RUN_STATUSES), f"status {status!r} is not one of {RUN_STATUSES}", run
        )
    return text


def log_level(level: Any, run: str | None = None) -> str:
    """``level`` lower-cased if it is a known log level (``warn`` is kept as given).

    Raises:
        ValidationError: any other value.
    """
    text = str(level).lower()
    if text not in LOG_LEVELS:
        raise ValidationError("level", "/".join(LOG_LEVELS), f"level {level!r} is unknown", run)
    return text


def flatten(
    params: Mapping[str, Any], prefix: str = "", run_id: str | None = None
) -> dict[str, Any]:
    """Nested mappings flattened to dotted keys: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``.

    Raises:
        ValidationError: ``params`` is not a mapping, or a dotted key grows past 250
            characters (so nesting is bounded: a mapping in itself, or 1,000 levels deep,
            is refused, never a RecursionError).
    """
    if not isinstance(params, Mapping):
        raise ValidationError(
            "params", "a mapping", f"params {type(params).__name__} is not a mapping", run_id
        )
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            if len(name) >= MAX_KEY_LENGTH:
                raise ValidationError(
                    "params",
                    f"dotted keys of at most {MAX_KEY_LENGTH} characters",
                    f"params nested too deeply: {name[:40]!r}... reaches {len(name)} "
                    f"characters before its last level (at most {MAX_KEY_LENGTH})",
                    run_id,
                )
            flat.update(flatten(value, name, run_id))
        else:
            flat[name] = value
    return flat


def string_map(
    values: Mapping[str, Any] | None, field: str, limit: int, run: str | None = None
) -> dict[str, str]:
    """A mapping of valid keys to string values of at most ``limit`` characters.

    Raises:
        ValidationError: a key or value breaks its rule.
    """
    return {
        check_key(k, f"{field} key", run): text_value(v, f"{field}[{k}]", limit, run)
        for k, v in (values or {}).items()
    }
