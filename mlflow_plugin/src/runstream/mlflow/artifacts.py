"""MLflow's artifact repository over Runstream's content-addressed artifact store.

A run's artifact URI is ``runstream-artifacts:/runs/<run_id>``: ``log_artifact(s)`` store the
files through the SDK's uploader (content-addressed, one ``ArtifactLogged`` event per file),
``list_artifacts`` and ``download_artifacts`` read them back through the query layer. The
repository uses the tracking store MLflow built for the tracking URI (one per process), so
its reads see this process's own uploads.
"""

from __future__ import annotations

import posixpath
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow.entities import FileInfo
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import FEATURE_DISABLED, INVALID_PARAMETER_VALUE
from mlflow.store.artifact.artifact_repo import ArtifactRepository
from runstream.contract.identifiers import model_stream
from runstream.core.errors import RunstreamError
from runstream.mlflow.uris import split_artifact_uri

if TYPE_CHECKING:
    from runstream.mlflow.store import RunstreamStore

UPLOAD_TIMEOUT = 600.0
"""Seconds ``log_artifact`` waits for its files to be stored (MLflow deletes temporary files
as soon as the call returns, so the upload must be done by then)."""


def _store(tracking_uri: str | None) -> RunstreamStore:
    """The tracking store of ``tracking_uri`` (MLflow's current one when None)."""
    import mlflow
    from mlflow.tracking._tracking_service.utils import _get_store
    from runstream.mlflow.store import RunstreamStore

    store = _get_store(tracking_uri or mlflow.get_tracking_uri())
    if not isinstance(store, RunstreamStore):
        raise MlflowException(
            "runstream-artifacts: URIs need a Runstream tracking URI "
            "(MLFLOW_TRACKING_URI=runstream+file://… or runstream+kafka://…)",
            INVALID_PARAMETER_VALUE,
        )
    return store


class RunstreamArtifactRepository(ArtifactRepository):
    """The artifacts of one run (``runstream-artifacts:/runs/<run_id>[/<path>]``) or logged
    model (``…:/models/<model_id>[/<path>]``: the files of the model's own stream).

    Raises:
        MlflowException: the URI does not name a run, or the tracking URI is not Runstream's.
    """

    def __init__(
        self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None
    ) -> None:
        super().__init__(artifact_uri, tracking_uri, registry_uri)
        kind, entity_id, self.root = split_artifact_uri(artifact_uri)
        if kind == "experiments":
            raise MlflowException(
                f"{artifact_uri!r}: Runstream stores artifacts of runs and logged models only",
                FEATURE_DISABLED,
            )
        self.run_id = entity_id if kind == "runs" else model_stream(entity_id)
        self._tracking_uri = tracking_uri

    def _path(self, path: str | None) -> str | None:
        joined = posixpath.join(self.root, path) if path else self.root
        return joined.strip("/") or None

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        """Store one local file under ``artifact_path``; returns once it is stored.

        Raises:
            MlflowException: the file cannot be read or the path is unsafe.
        """
        self._log(local_file, artifact_path)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        """Store every file under ``local_dir`` under ``artifact_path`` (the folder's own name
        is not kept, as in MLflow); returns once they are stored.

        Raises:
            MlflowException: the folder cannot be read or a path is unsafe.
        """
        for path in sorted(Path(local_dir).rglob("*")):
            if path.is_file():
                parent = path.parent.relative_to(local_dir).as_posix()
                below = None if parent == "." else parent
                target = posixpath.join(artifact_path, below or "") if artifact_path else below
                target = target.rstrip("/") if target else None
                self._log(str(path), target, wait=False)
        self._wait()

    def _log(self, local_file: str, artifact_path: str | None, wait: bool = True) -> None:
        store = _store(self._tracking_uri)
        try:
            store.artifact_handle(self.run_id).log_artifact(local_file, self._path(artifact_path))
        except RunstreamError as error:
            raise MlflowException(str(error), INVALID_PARAMETER_VALUE) from error
        if wait:
            self._wait()

    def _wait(self) -> None:
        store = _store(self._tracking_uri)
        try:
            left = store.client.uploader.wait(UPLOAD_TIMEOUT)
        except RunstreamError as error:
            raise MlflowException(f"artifact upload failed: {error}") from error
        if left:
            raise MlflowException(f"{left} artifact uploads still running after {UPLOAD_TIMEOUT}s")

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """The files and folders directly under ``path`` (relative to this repository's root),
        as MLflow lists them; none when nothing is there."""
        from runstream.query.exceptions import ArtifactNotFoundError, RunNotFoundError

        wanted = self._path(path)
        try:
            artifacts = _store(self._tracking_uri).artifact_reader().list_artifacts(self.run_id)
        except RunNotFoundError:
            return []
        except ArtifactNotFoundError:
            return []
        prefix = "" if wanted is None else wanted + "/"
        base = "" if not self.root else self.root + "/"
        entries: dict[str, FileInfo] = {}
        for artifact in artifacts:
            if not artifact.path.startswith(prefix):
                continue
            rest = artifact.path[len(prefix) :]
            head, _, tail = rest.partition("/")
            full = prefix + head
            shown = full[len(base) :] if full.startswith(base) else full
            entries[head] = (
                FileInfo(shown, True, None) if tail else FileInfo(shown, False, artifact.size)
            )
        return [entries[key] for key in sorted(entries)]

    def _download_file(self, remote_file_path: str, local_path: str) -> None:
        """Copy one stored file (checked against its sha256) to ``local_path``.

        Raises:
            MlflowException: RESOURCE_DOES_NOT_EXIST when there is no such file.
        """
        from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST
        from runstream.query.exceptions import QueryError

        path = self._path(remote_file_path)
        folder = Path(tempfile.mkdtemp(prefix="runstream-mlflow-"))
        try:
            reader = _store(self._tracking_uri).artifact_reader()
            got = reader.download_artifacts(self.run_id, path, folder)
            Path(local_path).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(got), local_path)
        except QueryError as error:
            raise MlflowException(
                f"no artifact {remote_file_path!r} in run {self.run_id}: {error}",
                RESOURCE_DOES_NOT_EXIST,
            ) from error
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        """Not served: stored artifacts are immutable events of the run.

        Raises:
            MlflowException: FEATURE_DISABLED, always.
        """
        raise MlflowException(
            "Runstream does not delete artifacts (they are events of the run)", FEATURE_DISABLED
        )


__all__ = ["RunstreamArtifactRepository"]
