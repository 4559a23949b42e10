"""``load_model``: a logged model read back from the store through the query engine.

Imported on demand (it pulls in the query layer), so logging never pays for it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from runstream.core.settings import Settings
from runstream.query.engine import QueryEngine
from runstream.query.exceptions import ArtifactNotFoundError
from runstream.tracking.models import MANIFEST, load_model


def load_logged_model(settings: Settings, run_id: str, name: str) -> Any:
    """Download the model folder ``name`` of run ``run_id`` (checked against its sha256) to
    a temporary folder, load it, and remove the folder.

    Raises:
        RunNotFoundError: no visible run has this id.
        ArtifactNotFoundError: the run has no model ``name`` (no manifest recorded).
        ModelError: the model cannot be loaded.
    """
    folder = Path(tempfile.mkdtemp(prefix="runstream-load-"))
    try:
        with QueryEngine.from_settings(settings) as engine:
            paths = {artifact.path for artifact in engine.list_artifacts(run_id, name)}
            if f"{name.rstrip('/')}/{MANIFEST}" not in paths:
                raise ArtifactNotFoundError(run_id, f"{name}/{MANIFEST}")
            local = engine.download_artifacts(run_id, name, folder)
        return load_model(local)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
