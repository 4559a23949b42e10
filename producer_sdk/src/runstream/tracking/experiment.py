"""ML-Dash's experiment object over a Runstream run.

As ML-Dash's docs write it, with ``from runstream.tracking import Experiment`` for
``from ml_dash import Experiment``::

    with Experiment(prefix="alice/vision/resnet-baseline").run as experiment:
        experiment.params.set(learning_rate=0.001, batch_size=32)
        for epoch in range(10):
            experiment.metrics("train").log(loss=loss, epoch=epoch)
        experiment.log("Training completed", level="info")

The prefix's second segment (or ``project``) is the run's collection and its last segment
(or ``name``) the run's name. ``local_path`` stores the run in that folder (the embedded
mode, ``file://``); ``remote`` takes a Runstream tracking URI (``kafka://…``, ``file://…``);
without either, ``RUNSTREAM_TRACKING_URI`` decides, as for every other call. Once started,
every :class:`~runstream.tracking.run.Run` method is the experiment's: ``params``,
``metrics``, ``log``, ``read_logs``, ``log_artifact``, ``run_id``, ...
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from runstream.tracking import fluent
from runstream.tracking.client import Client
from runstream.tracking.exceptions import NoActiveRunError, ValidationError
from runstream.tracking.run import Run

_URI_SCHEMES = ("kafka://", "file://", "noop://")


class Experiment:
    """An ML-Dash experiment: a run started by ``.run`` (a context manager, also callable
    and with ``start``/``complete``/``fail``/``cancel``) or by ``with experiment:``."""

    def __init__(
        self,
        prefix: str | None = None,
        project: str | None = None,
        name: str | None = None,
        *,
        description: str | None = None,
        readme: str | None = None,
        tags: Iterable[str] | Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        local_path: str | Path | None = None,
        remote: str | None = None,
        run_id: str | None = None,
    ) -> None:
        """Describe the experiment (nothing is logged until it starts).

        Raises:
            ValidationError: neither ``prefix`` nor ``name`` is given, or ``remote`` is not
                a Runstream tracking URI.
        """
        segments = [part for part in (prefix or "").split("/") if part]
        if not segments and not name:
            raise ValidationError("prefix", "a prefix or a name", "name the experiment")
        self.name = name or segments[-1]
        self.project = project or (segments[1] if len(segments) > 2 else None)
        self._description = description if description is not None else readme
        self._tags = tags
        self._metadata = metadata
        self._run_id = run_id
        self._client = _client(local_path, remote)
        self._run: Run | None = None

    @property
    def run(self) -> _Lifecycle:
        """The experiment's lifecycle: ``with experiment.run:`` (or ``.run()``) starts the
        run, makes it the active one and ends it (FAILED if an exception escapes)."""
        return _Lifecycle(self)

    @property
    def started(self) -> Run:
        """The run, once started.

        Raises:
            NoActiveRunError: the experiment has not started.
        """
        if self._run is None:
            raise NoActiveRunError(
                f"experiment {self.name!r} has not started: use `with experiment.run:`"
            )
        return self._run

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        return getattr(self.started, attribute)

    def __enter__(self) -> Experiment:
        self.run.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.run.__exit__(exc_type, exc, traceback)

    def _start(self) -> Run:
        if self._run is None:
            start = self._client.start_run if self._client else fluent.get_client().start_run
            run = start(self.name, self.project, self._run_id, None)
            if self._tags:
                run.log_tags(self._tags)
            if self._description is not None:
                run.set_tag("description", self._description)
            if self._metadata:
                run.set_labels(dict(self._metadata))
            self._run = fluent.activate(run)
        return self._run

    def _sent(self) -> None:
        """Send what the ended run logged when it has its own client (``local_path`` or
        ``remote``), as ML-Dash's experiment writes everything by its end."""
        if self._client is not None:
            self._client.flush()


class _Lifecycle:
    """``experiment.run``: start and end the experiment's run."""

    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment

    def __call__(self) -> _Lifecycle:
        return self

    def start(self) -> Experiment:
        """Start the run (once) and make it the active one."""
        self.experiment._start()
        return self.experiment

    def complete(self) -> None:
        """End the run FINISHED."""
        self._end("FINISHED")

    def fail(self) -> None:
        """End the run FAILED."""
        self._end("FAILED")

    def cancel(self) -> None:
        """End the run KILLED."""
        self._end("KILLED")

    def _end(self, status: str) -> None:
        run = self.experiment.started
        run.end(status)
        run.client._left_context(run)
        self.experiment._sent()

    def __enter__(self) -> Experiment:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.experiment.started.__exit__(exc_type, exc, traceback)
        self.experiment._sent()


def _client(local_path: str | Path | None, remote: str | None) -> Client | None:
    """The client of an explicit ``local_path`` or ``remote``; None for the default one.

    Raises:
        ValidationError: ``remote`` is not a Runstream tracking URI.
    """
    if remote is not None:
        if not remote.startswith(_URI_SCHEMES):
            raise ValidationError(
                "remote",
                "a Runstream tracking URI (kafka://, file:// or noop://)",
                f"remote {remote[:80]!r} is not one",
            )
        return Client(remote)
    if local_path is not None:
        return Client(f"file://{Path(local_path).resolve()}")
    return None
