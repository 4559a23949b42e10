"""Rules for run ids: part of the contract, since a run id is a path segment in the store."""

from __future__ import annotations

import re

from schemas.exceptions import SchemaError

RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.]{0,127}$")


class UnsafeRunIdError(SchemaError, ValueError):
    """A run id is not one safe path segment."""


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is one safe path segment.

    Raises:
        UnsafeRunIdError: it is empty, longer than 128 characters, does not start with a
            letter or digit, or has a character outside ``[A-Za-z0-9_-.]``.
    """
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id):
        raise UnsafeRunIdError(
            f"run_id {run_id!r} is not a safe path segment: 1-128 characters of "
            "[A-Za-z0-9_-.], starting with a letter or digit"
        )
    return run_id
