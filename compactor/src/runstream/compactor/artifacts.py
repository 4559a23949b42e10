"""A deleted run's artifacts leave the store with it.

The SDK stores artifact objects under ``{store}/artifacts/run_id={run}/`` (see
:mod:`runstream.contract.layout`). When the reducer's state of a run says it is deleted, the snapshot
writer (:meth:`runstream.compactor.snapshots.Snapshots.write`) calls :func:`delete_run_artifacts`:
the objects the state knows (every artifact path's current object) are deleted through the
store, retried like every store operation; then the run's artifact folder is swept once for
objects no path points at any more (replaced versions), a failure of that sweep only logged
(the next write of the run's state sweeps again). Deleting twice (a replay, a rewrite after
a crash) is harmless. A run undeleted later keeps its artifact events but not their bytes:
deletion is final for stored files.
"""

from __future__ import annotations

import logging

from runstream.compactor.store import Store
from runstream.contract.layout import artifact_object_path, artifacts_dir
from runstream.contract.state import RunState

logger = logging.getLogger(__name__)


def delete_run_artifacts(store: Store, state: RunState) -> int:
    """Delete every stored artifact object of the run of ``state``; return how many objects
    were asked to be deleted (0 when the run has none).

    Raises:
        UnsafeRunIdError: the run id is not a safe path segment.
        StoreWriteError: the store kept failing and the worker is stopping.
        StoreAccessError: the store refused the credentials.
    """
    known = {
        artifact_object_path(store.root, state.run_id, artifact.sha256)
        for artifact in state.artifacts.values()
        if len(artifact.sha256) == 64
    }
    store.delete(sorted(known))
    leftovers = _sweep(store, state.run_id)
    if leftovers:
        store.delete(leftovers)
    if known or leftovers:
        logger.info(
            "run %s deleted: removed %d artifact objects", state.run_id, len(known | set(leftovers))
        )
    return len(known | set(leftovers))


def _sweep(store: Store, run_id: str) -> list[str]:
    """The files left in the run's artifact folder (one listing attempt; [] if it fails)."""
    folder = artifacts_dir(store.root, run_id)
    try:
        return sorted(str(path) for path in store.fs.find(folder))
    except FileNotFoundError:
        return []
    except Exception as error:  # s3fs/botocore raise many types when S3 is down
        logger.warning("cannot list %s to sweep deleted artifacts: %r", folder, error)
        return []
