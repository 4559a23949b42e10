"""Errors of the producer SDK.

::

    RunstreamError
    └── SdkError
        ├── ValidationError (also ValueError): a call's input breaks a rule; names field and limit
        ├── NoActiveRunError: a fluent call needs a run and none is started in this context
        ├── RunEndedError: a call on a run that has already ended
        ├── FlushError: not everything logged was acknowledged in time; says how many
        ├── SinkError: the destination (Kafka, local log, spill) failed
        ├── ReadUnavailableError (also ImportError): a read call needs the query component
        └── ArtifactError: a file could not be logged, stored or loaded; names run and path
            └── ModelError: a model cannot be saved (not picklable) or loaded
"""

from __future__ import annotations

from runstream.core.errors import RunstreamError


class SdkError(RunstreamError):
    """Base of every error the producer SDK raises."""


class ValidationError(SdkError, ValueError):
    """An argument of an SDK call breaks a rule; nothing of that call was logged.

    Attributes:
        field: the argument at fault (``key``, ``value``, ``run_id``, ...).
        limit: the rule it breaks, in words.
        run_id: the run the call was for, if any.
    """

    def __init__(self, field: str, limit: str, message: str, run_id: str | None = None) -> None:
        where = f" (run {run_id})" if run_id else ""
        super().__init__(f"{field}: {message}{where}")
        self.field = field
        self.limit = limit
        self.run_id = run_id


class NoActiveRunError(SdkError):
    """A fluent call needs an active run: call ``start_run()`` first (or pass a run)."""


class RunEndedError(SdkError):
    """A call was made on a run that has already ended; start a new run."""


class FlushError(SdkError):
    """Events logged so far were not all acknowledged within the timeout.

    Attributes:
        unacknowledged: how many events are not acknowledged yet (they are still buffered or
            spilled to a local file, and are sent when the destination is back).
    """

    def __init__(self, unacknowledged: int, timeout: float, detail: str = "") -> None:
        super().__init__(
            f"{unacknowledged} events not acknowledged within {timeout:g} s"
            + (f": {detail}" if detail else "")
            + "; they stay buffered or spilled and are resent when the destination answers"
        )
        self.unacknowledged = unacknowledged
        self.timeout = timeout


class SinkError(SdkError):
    """The destination of events failed; the message names it and the cause."""


class ReadUnavailableError(SdkError, ImportError):
    """A read call (``load_model``, the seeds' read calls) needs the query component, which
    this install lacks; the message names the extra to install.

    Attributes:
        extra: what to install (``runstream-sdk[read]``).
    """

    def __init__(self, extra: str, missing: str) -> None:
        super().__init__(
            f"reading runs needs the query component ({missing} is not installed): "
            f"pip install '{extra}' (or the whole of runstream)"
        )
        self.extra = extra


class ArtifactError(SdkError):
    """An artifact could not be logged, stored or loaded; nothing of it was recorded.

    Attributes:
        run_id: the run the artifact belongs to.
        path: the artifact path, or the local file, at fault.
    """

    def __init__(self, message: str, run_id: str | None = None, path: str | None = None) -> None:
        where = ", ".join(
            part
            for part in (f"run {run_id}" if run_id else "", f"path {path!r}" if path else "")
            if part
        )
        super().__init__(f"{message} ({where})" if where else message)
        self.run_id = run_id
        self.path = path


class ModelError(ArtifactError):
    """A model cannot be saved (its library cannot serialise it, or it is not picklable) or
    loaded back (no manifest, an unknown flavor, its library missing)."""
