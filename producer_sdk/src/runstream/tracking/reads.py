"""The SDK's read half (``load_model`` today), answered by the query component.

The query component (DuckDB, pyarrow) is not a dependency of the SDK: a training image that
only logs never installs it. It is imported here on first use, and when it is missing the
error names the extra that brings it (``pip install 'runstream-sdk[read]'``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runstream.core.settings import Settings
from runstream.tracking.exceptions import ReadUnavailableError
from runstream.tracking.models import MANIFEST, load_model

if TYPE_CHECKING:
    from runstream.query.engine import QueryEngine

READ_EXTRA = "runstream-sdk[read]"


def open_engine(settings: Settings) -> QueryEngine:
    """A query engine over the store and event log of ``settings``.

    Raises:
        ReadUnavailableError: the query component is not installed.
        ConfigError: the store cannot be opened.
    """
    try:
        from runstream.query.engine import QueryEngine
    except ModuleNotFoundError as error:
        raise ReadUnavailableError(READ_EXTRA, error.name or "runstream.query") from error
    return QueryEngine.from_settings(settings)


def load_logged_model(settings: Settings, run_id: str, name: str) -> Any:
    """Download the model folder ``name`` of run ``run_id`` (checked against its sha256) to
    a temporary folder, load it, and remove the folder.

    Raises:
        ReadUnavailableError: the query component is not installed.
        RunNotFoundError: no visible run has this id.
        ArtifactNotFoundError: the run has no model ``name`` (no manifest recorded).
        ModelError: the model cannot be loaded.
    """
    folder = Path(tempfile.mkdtemp(prefix="runstream-load-"))
    try:
        with open_engine(settings) as engine:
            paths = {artifact.path for artifact in engine.list_artifacts(run_id, name)}
            if f"{name.rstrip('/')}/{MANIFEST}" not in paths:
                from runstream.query.exceptions import ArtifactNotFoundError

                raise ArtifactNotFoundError(run_id, f"{name}/{MANIFEST}")
            local = engine.download_artifacts(run_id, name, folder)
        return load_model(local)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
