"""Artifacts of a run as readers see them: listed from the run state, read from the store.

The run state (the reducer's ``artifacts`` registers) maps each artifact path to its stored
object (URI, size, sha256, media type). Listing needs nothing but the state; a download
reads each object through the store's filesystem, checks its sha256 and only then renames it
into place, so a destination never holds a partial or wrong file.

A download reads only inside the store: the object of an artifact is where the layout puts
the digest it records (:func:`runstream.contract.layout.artifact_object_path`), whatever
location its ``uri`` names (an event may name any URI; the store is content-addressed, so
the digest is enough).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fsspec import AbstractFileSystem

from runstream.contract.exceptions import UnsafeArtifactPathError, UnsafeRunIdError
from runstream.contract.identifiers import check_artifact_path
from runstream.contract.layout import artifact_object_path
from runstream.contract.state import RunState
from runstream.query.exceptions import ArtifactNotFoundError, ArtifactReadError

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Artifact:
    """One artifact of a run: its path in the run, where its bytes are, size, sha256, type."""

    path: str
    uri: str
    size: int
    sha256: str
    media_type: str


def artifacts_of(state: RunState) -> dict[str, Artifact]:
    """The artifacts of a run state, by path (sorted)."""
    return {
        path: Artifact(path, a.uri, a.size, a.sha256, a.media_type)
        for path, a in sorted(state.artifacts.items())
    }


def select(run_id: str, artifacts: Iterable[Artifact], path: str | None) -> list[Artifact]:
    """The artifacts at ``path`` or under it (every one when None), by path.

    Raises:
        ArtifactNotFoundError: ``path`` names no artifact nor folder of artifacts.
        UnsafeArtifactPathError: ``path`` is not a safe artifact path.
    """
    found = sorted(artifacts, key=lambda a: a.path)
    if path is None:
        return found
    wanted = check_artifact_path(path.rstrip("/"))
    chosen = [a for a in found if a.path == wanted or a.path.startswith(wanted + "/")]
    if not chosen and path is not None:
        raise ArtifactNotFoundError(run_id, wanted)
    return chosen


def download(
    fs: AbstractFileSystem,
    root: str,
    run_id: str,
    artifacts: Iterable[Artifact],
    destination: Path,
) -> None:
    """Copy each artifact's object, read from the store under ``root`` at the place of its
    sha256, to ``destination / artifact.path``, checked against its sha256 and size before
    it is renamed into place.

    Raises:
        ArtifactReadError: an object is missing, unreadable, or not the recorded bytes, or
            a recorded path or digest is unsafe.
    """
    for artifact in artifacts:
        try:
            relative = check_artifact_path(artifact.path)
            source = artifact_object_path(root, run_id, artifact.sha256)
        except (UnsafeArtifactPathError, UnsafeRunIdError, ValueError) as error:
            raise ArtifactReadError(f"run {run_id!r}: {error}") from error
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.parent / f".tmp-{uuid.uuid4().hex}"
        try:
            digest, size = _copy(fs, source, temporary)
            if digest != artifact.sha256 or size != artifact.size:
                raise ArtifactReadError(
                    f"run {run_id!r} artifact {artifact.path!r}: {source} holds {size} "
                    f"bytes of sha256 {digest}, recorded {artifact.size} bytes of {artifact.sha256}"
                )
            os.replace(temporary, target)
        except OSError as error:
            raise ArtifactReadError(
                f"run {run_id!r} artifact {artifact.path!r}: cannot read {source}: {error!r}"
            ) from error
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()


def _copy(fs: AbstractFileSystem, path: str, target: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with fs.open(path, "rb") as source, target.open("wb") as sink:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            sink.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
