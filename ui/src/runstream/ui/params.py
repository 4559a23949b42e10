"""Validation of a request's query string: every parameter named, typed and bounded.

A :class:`Params` is built from the query string and the names an endpoint accepts; an
unknown name, a repeated single-valued name or a value out of range raises
:class:`~runstream.ui.exceptions.BadParameterError` naming the parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from runstream.contract.exceptions import UnsafeRunIdError
from runstream.contract.identifiers import check_run_id
from runstream.tracking.exceptions import ValidationError
from runstream.tracking.validation import check_key
from runstream.ui.exceptions import BadParameterError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_TEXT = 4096


class Params:
    """The query parameters of one request, checked against the names an endpoint accepts.

    Args:
        items: the (name, value) pairs of the query string, in order.
        allowed: the parameter names the endpoint accepts.

    Raises:
        BadParameterError: a name is not in ``allowed``.
    """

    def __init__(self, items: Iterable[tuple[str, str]], allowed: Iterable[str]) -> None:
        self._values: dict[str, list[str]] = {}
        names = set(allowed)
        for name, value in items:
            if name not in names:
                raise BadParameterError(
                    name, f"unknown parameter; this endpoint takes {', '.join(sorted(names))}"
                )
            self._values.setdefault(name, []).append(value)

    def _one(self, name: str) -> str | None:
        values = self._values.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise BadParameterError(name, f"given {len(values)} times; give it once")
        return values[0]

    def text(self, name: str, *, max_length: int = MAX_TEXT, required: bool = False) -> str | None:
        """The string value of ``name`` (None when absent and not required).

        Raises:
            BadParameterError: missing while required, repeated, or longer than max_length.
        """
        value = self._one(name)
        if value is None or value == "":
            if required:
                raise BadParameterError(name, "required")
            return None
        if len(value) > max_length:
            raise BadParameterError(name, f"at most {max_length} characters, got {len(value)}")
        return value

    def texts(self, name: str, *, max_count: int, max_length: int = MAX_TEXT) -> list[str]:
        """Every value of the repeatable ``name``, empty ones dropped.

        Raises:
            BadParameterError: more than max_count values, or one longer than max_length.
        """
        values = [v for v in self._values.get(name, []) if v != ""]
        if len(values) > max_count:
            raise BadParameterError(name, f"at most {max_count} values, got {len(values)}")
        for value in values:
            if len(value) > max_length:
                raise BadParameterError(name, f"at most {max_length} characters per value")
        return values

    def integer(
        self, name: str, *, default: int | None, low: int = INT64_MIN, high: int = INT64_MAX
    ) -> int | None:
        """The integer value of ``name`` within [low, high], or ``default`` when absent.

        Raises:
            BadParameterError: repeated, not a base-10 integer, or out of range.
        """
        value = self._one(name)
        if value is None or value == "":
            return default
        try:
            number = int(value, 10)
        except ValueError:
            raise BadParameterError(name, f"must be an integer, got {value[:40]!r}") from None
        if not low <= number <= high:
            raise BadParameterError(name, f"must be between {low} and {high}, got {number}")
        return number


def run_id(value: str, field: str = "run") -> str:
    """``value`` if it is a valid run id.

    Raises:
        BadParameterError: it is not one safe path segment.
    """
    try:
        return check_run_id(value)
    except UnsafeRunIdError as error:
        raise BadParameterError(field, str(error)) from error


def run_ids(values: Sequence[str], field: str = "run") -> list[str]:
    """Every value checked by :func:`run_id`, duplicates dropped (first kept).

    Raises:
        BadParameterError: one is not a valid run id, or none is given.
    """
    if not values:
        raise BadParameterError(field, "give at least one run id")
    return list(dict.fromkeys(run_id(value, field) for value in values))


def metric_key(value: str | None, field: str = "key") -> str:
    """``value`` if it is a valid metric key (the SDK's rule).

    Raises:
        BadParameterError: missing, too long, or with a character the SDK rejects.
    """
    if value is None:
        raise BadParameterError(field, "required")
    try:
        return check_key(value, field)
    except ValidationError as error:
        raise BadParameterError(field, str(error).removeprefix(f"{field}: ")) from error


def step_range(start: int | None, end: int | None) -> tuple[int | None, int | None]:
    """(start_step, end_step) if start <= end.

    Raises:
        BadParameterError: start_step is greater than end_step.
    """
    if start is not None and end is not None and start > end:
        raise BadParameterError("start_step", f"must be <= end_step ({start} > {end})")
    return start, end
