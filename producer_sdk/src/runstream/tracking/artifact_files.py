"""What each artifact call uploads: checked on the caller's thread, before anything is stored.

Each function turns one call's input (a local file or folder, a text, a dict, a figure, a
model) into the :class:`~runstream.tracking.artifacts.UploadFile` list of one upload, or raises:
a missing file or an unsafe artifact path is refused before any byte is stored.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from runstream.contract.exceptions import UnsafeArtifactPathError
from runstream.contract.layout import artifact_path as join_artifact_path
from runstream.tracking.artifacts import UploadFile, file_of, media_type
from runstream.tracking.exceptions import ArtifactError, ValidationError
from runstream.tracking.models import MANIFEST, save_model

FIGURE_FORMATS = ("png", "svg", "pdf", "jpg", "jpeg")


def checked_path(run_id: str, *parts: str, field: str = "artifact_path") -> str:
    """The artifact path joining ``parts``.

    Raises:
        ValidationError: the path is empty, absolute, or could leave the run's artifacts.
    """
    try:
        return join_artifact_path(*parts)
    except (UnsafeArtifactPathError, TypeError, AttributeError) as error:
        raise ValidationError(
            field, "a relative path inside the run", str(error), run_id
        ) from error


def local_files(run_id: str, local_path: Any, artifact_path: str | None) -> list[UploadFile]:
    """A local file, or every file under a local folder, as artifacts under
    ``artifact_path`` (the file or folder keeps its name, as MLflow's ``log_artifact``).

    Raises:
        ArtifactError: the local path does not exist or cannot be read.
        ValidationError: an artifact path would be unsafe.
    """
    local = Path(os.fspath(local_path))
    base = "" if artifact_path is None else checked_path(run_id, artifact_path)
    if local.is_file():
        return [file_of(checked_path(run_id, base, local.name), local)]
    if not local.is_dir():
        raise ArtifactError(f"local file {str(local)!r} does not exist", run_id, str(local))
    found = sorted(p for p in local.rglob("*") if p.is_file())
    paths = [checked_path(run_id, base, local.name, p.relative_to(local).as_posix()) for p in found]
    if not found:
        raise ArtifactError(f"local folder {str(local)!r} holds no file", run_id, str(local))
    return [file_of(path, p) for path, p in zip(paths, found, strict=True)]


def text_file(run_id: str, text: Any, artifact_file: str) -> UploadFile:
    """A text (UTF-8) as artifact ``artifact_file``.

    Raises:
        ValidationError: ``text`` is not a string, or the path is unsafe.
    """
    path = checked_path(run_id, artifact_file, field="artifact_file")
    if not isinstance(text, str):
        raise ValidationError("text", "a string", f"got {type(text).__name__}", run_id)
    return UploadFile(path, text.encode("utf-8"), None, media_type(path))


def dict_file(run_id: str, obj: Any, artifact_file: str) -> UploadFile:
    """A dict as JSON (``.json``) or YAML (``.yaml``/``.yml``) artifact ``artifact_file``.

    Raises:
        ValidationError: the extension is neither, the object cannot be serialised, or the
            path is unsafe.
        ArtifactError: YAML is asked for and PyYAML is not installed.
    """
    path = checked_path(run_id, artifact_file, field="artifact_file")
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".json":
            text = json.dumps(obj, indent=2, allow_nan=True)
        elif suffix in (".yaml", ".yml"):
            try:
                yaml = importlib.import_module("yaml")
            except ImportError as error:
                raise ArtifactError(
                    "YAML needs PyYAML: pip install pyyaml", run_id, path
                ) from error
            text = yaml.safe_dump(obj, sort_keys=False)
        else:
            raise ValidationError(
                "artifact_file",
                ".json, .yaml or .yml",
                f"{path!r} has extension {suffix!r}",
                run_id,
            )
    except (TypeError, ValueError) as error:
        if isinstance(error, ValidationError):
            raise
        raise ValidationError(
            "obj", "JSON/YAML data", f"cannot serialise: {error}", run_id
        ) from error
    except Exception as error:  # yaml.YAMLError (a RepresenterError for unknown types)
        if isinstance(error, ArtifactError):
            raise
        raise ValidationError(
            "obj", "JSON/YAML data", f"cannot serialise: {error}", run_id
        ) from error
    return UploadFile(path, text.encode("utf-8"), None, media_type(path))


def figure_file(run_id: str, figure: Any, artifact_file: str) -> UploadFile:
    """A matplotlib figure drawn into artifact ``artifact_file`` (format from its extension:
    png, svg, pdf, jpg).

    Raises:
        ValidationError: the path is unsafe, the format unknown, or ``figure`` has no
            ``savefig``.
        ArtifactError: the figure cannot be drawn.
    """
    path = checked_path(run_id, artifact_file, field="artifact_file")
    kind = Path(path).suffix.lower().lstrip(".")
    if kind not in FIGURE_FORMATS:
        raise ValidationError(
            "artifact_file", f"one of {FIGURE_FORMATS}", f"{path!r} has format {kind!r}", run_id
        )
    if not callable(getattr(figure, "savefig", None)):
        raise ValidationError(
            "figure", "a matplotlib Figure", f"{type(figure).__name__} has no savefig()", run_id
        )
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format=kind)
    except Exception as error:
        raise ArtifactError(f"cannot draw the figure: {error!r}", run_id, path) from error
    return UploadFile(path, buffer.getvalue(), None, media_type(path))


def model_files(run_id: str, model: Any, name: str) -> tuple[list[UploadFile], Path]:
    """A model saved with its manifest into a temporary folder: the files (the manifest
    last) and the folder (to remove once uploaded).

    Raises:
        ValidationError: ``name`` is not a safe artifact path.
        ModelError: the model cannot be saved (the temporary folder is removed).
    """
    base = checked_path(run_id, name, field="name")
    folder = Path(tempfile.mkdtemp(prefix="runstream-model-"))
    try:
        save_model(model, folder)
        names = [*sorted(p.name for p in folder.iterdir() if p.name != MANIFEST), MANIFEST]
        files = [
            UploadFile(checked_path(run_id, base, n), None, folder / n, media_type(n))
            for n in names
        ]
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return files, folder
