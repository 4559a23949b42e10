"""Input rules of every SDK call: checked on the caller's thread, before anything is queued.

Each check raises :class:`ValidationError` naming the field and the limit; a rejected call
leaves the run's earlier events untouched.
"""

from __future__ import annotations

import math
import numbers
import operator
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from runstream.contract.exceptions import UnsafeRunIdError
from runstream.contract.identifiers import check_run_id
from runstream.tracking.exceptions import ValidationError

MAX_KEY_LENGTH = 250
MAX_SAP_NAME_LENGTH = 256
"""SAP's limit on a parameter name (``log_parameters``); every other key keeps 250."""
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 5000
KEY_CHARACTERS = "[A-Za-z0-9_\\-./ :]"
STEP_RANGE = (-(2**63), 2**63 - 1)
_KEY = re.compile(r"[A-Za-z0-9_\-./ :]+")
RUN_STATUSES = ("FINISHED", "FAILED", "KILLED")
_STATUS_ALIASES = {"SUCCEEDED": "FINISHED", "DONE": "FINISHED", "STOPPED": "KILLED"}
"""Polyaxon's end statuses, as Runstream's."""
LOG_LEVELS = ("debug", "info", "warn", "warning", "error", "critical", "fatal")


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
            field, "non-empty string", f"must be a non-empty string, got {key!r}", run_id
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
        return float(value)
    ndim = getattr(value, "ndim", None)
    if ndim == 0 and not isinstance(value, str | bytes):
        try:
            result = float(value)
        except (TypeError, ValueError) as error:
            raise _not_numeric(value, key, run_id) from error
        return result
    raise _not_numeric(value, key, run_id)


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
        raise ValidationError("step", "64-bit integer", f"step {result} is outside 64 bits", run_id)
    return result


def timestamp_ms(timestamp: Any, run_id: str | None = None) -> int:
    """``timestamp`` (milliseconds since the epoch) as an int.

    Raises:
        ValidationError: not a non-negative integer, float or datetime within 64 bits.
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
    if not 0 <= result <= STEP_RANGE[1]:
        raise ValidationError(
            "timestamp", "0 to 2**63-1", f"timestamp {result} is outside 0..2**63-1", run_id
        )
    return result


def text_value(value: Any, field: str, limit: int, run_id: str | None = None) -> str:
    """``str(value)`` if it has at most ``limit`` characters.

    Raises:
        ValidationError: longer than ``limit`` after ``str()``.
    """
    text = value if isinstance(value, str) else str(value)
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


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings flattened to dotted keys: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten(value, name))
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
