"""The store's layout: where every Parquet file lives and what columns it has. One place.

::

    {store}/metrics/run_id={run}/part-{partition}-{first_offset}-{last_offset}.parquet
    {store}/metrics/run_id={run}/merged-{partition}-{first_offset}-{last_offset}.parquet
    {store}/runs/run_id={run}/{table}.parquet      table: run, params, tags (latest wins)
    {store}/artifacts/run_id={run}/sha256/{hh}/{sha256}     artifact bytes, content-addressed

Offsets are zero-padded to 20 digits so that names sort in offset order. A run id is one
safe path segment (the SDK validates it; :func:`run_dir` re-checks), so no id can reach
another run's files.

A ``merged-`` file holds every row of the files of its partition whose offset range lies
within its own: once it exists, those files are hidden (:func:`live_files`) even before they
are deleted, so a reader listing the folder never sees a row twice nor misses one. Readers
that glob the folder instead deduplicate on the event identity (producer_id, sequence).

Every metric file carries a rollup of its points in its own footer (key-value metadata
:data:`~runstream.contract.parquet.ROLLUP_METADATA_KEY`; :mod:`runstream.contract.parquet` encodes it), :data:`~runstream.contract.parquet.ROLLUP_SCHEMA`: per
key and per block of ``2**ROLLUP_BLOCK_BITS`` steps (``block = step >> ROLLUP_BLOCK_BITS``),
the count, first step, min and max value and the last point by (step, timestamp, producer_id,
sequence). Min, max, first step and last point are idempotent, so the rollups of several files
(and of the tail) combine exactly; a downsample of millions of points reads thousands of rows,
fetching footers only. In the file itself, the rollup is written in the same PUT as its
points: it is there exactly as long as they are. (A file without one, written before rollups
existed, has its rollup computed from its points by the reader.)

Artifacts are stored by the SHA-256 of their bytes (``hh`` is its first two hex digits), so
the same file logged twice, under one path or several, is stored once per run; the
ArtifactLogged event maps the artifact's path to that object. An object is written whole
before its event is produced (one PUT on S3, a renamed temporary file on a local disk), and
the objects of a deleted run are removed with the run's folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from runstream.contract.identifiers import check_artifact_path, check_run_id

METRICS_DIR = "metrics"
RUNS_DIR = "runs"
ARTIFACTS_DIR = "artifacts"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PART = re.compile(
    r"(?P<kind>part|merged)-(?P<partition>\d+)-(?P<first>\d+)-(?P<last>\d+)\.parquet"
)
RUN_TABLES = ("run", "params", "tags")


def run_dir(root: str, run_id: str) -> str:
    """The folder of one run's metric files under the store root ``root``.

    Raises:
        UnsafeRunIdError: ``run_id`` is not a safe path segment.
    """
    return f"{root}/{METRICS_DIR}/run_id={check_run_id(run_id)}"


def part_name(partition: int, first_offset: int, last_offset: int) -> str:
    """The deterministic file name of the points from offsets first..last of a partition."""
    return f"part-{partition}-{first_offset:020d}-{last_offset:020d}.parquet"


def part_path(root: str, run_id: str, partition: int, first_offset: int, last_offset: int) -> str:
    """The full path of one metric file.

    Raises:
        UnsafeRunIdError: ``run_id`` is not a safe path segment.
    """
    return f"{run_dir(root, run_id)}/{part_name(partition, first_offset, last_offset)}"


def merged_name(partition: int, first_offset: int, last_offset: int) -> str:
    """The deterministic name of the file merging a partition's files within first..last."""
    return f"merged-{partition}-{first_offset:020d}-{last_offset:020d}.parquet"


def parse_part_name(name: str) -> tuple[int, int, int] | None:
    """(partition, first offset, last offset) of a part or merged file name, or None if it
    is neither."""
    match = _PART.fullmatch(name.rsplit("/", 1)[-1])
    if match is None:
        return None
    return int(match["partition"]), int(match["first"]), int(match["last"])


def is_merged(name: str) -> bool:
    """Whether ``name`` (a path or a file name) is a merged file."""
    match = _PART.fullmatch(name.rsplit("/", 1)[-1])
    return match is not None and match["kind"] == "merged"


def live_files(names: Iterable[str]) -> list[str]:
    """The metric files a reader should read among ``names`` (paths of one run's folder),
    in name order: every part or merged file not hidden by a merged file of the same
    partition whose offset range contains its own. Other names are dropped."""
    parsed = [(name, parse_part_name(name)) for name in names]
    files = [(name, span) for name, span in parsed if span is not None]
    merged = [span for name, span in files if is_merged(name)]
    live = []
    for name, (partition, first, last) in files:
        hidden = any(
            p == partition and f <= first and last <= e and (f, e) != (first, last)
            for p, f, e in merged
        ) or (not is_merged(name) and (partition, first, last) in merged)
        if not hidden:
            live.append(name)
    return sorted(live, key=lambda path: path.rsplit("/", 1)[-1])


def metrics_glob(root: str) -> str:
    """A glob matching every metric file of every run (merged and not yet deleted files
    included: deduplicate on (producer_id, sequence), or list with :func:`live_files`)."""
    return f"{root}/{METRICS_DIR}/run_id=*/*.parquet"


def run_table_path(root: str, run_id: str, table: str) -> str:
    """The snapshot file of ``table`` (run, params or tags) of one run.

    Raises:
        UnsafeRunIdError: ``run_id`` is not a safe path segment.
        ValueError: ``table`` is not one of :data:`RUN_TABLES`.
    """
    if table not in RUN_TABLES:
        raise ValueError(f"table {table!r} is not one of {RUN_TABLES}")
    return f"{root}/{RUNS_DIR}/run_id={check_run_id(run_id)}/{table}.parquet"


def runs_glob(root: str, table: str) -> str:
    """A glob matching the snapshot file of ``table`` of every run (hive partition run_id).

    Raises:
        ValueError: ``table`` is not one of :data:`RUN_TABLES`.
    """
    if table not in RUN_TABLES:
        raise ValueError(f"table {table!r} is not one of {RUN_TABLES}")
    return f"{root}/{RUNS_DIR}/run_id=*/{table}.parquet"


def artifacts_dir(root: str, run_id: str) -> str:
    """The folder of every stored artifact object of one run.

    Raises:
        UnsafeRunIdError: ``run_id`` is not a safe path segment.
    """
    return f"{root}/{ARTIFACTS_DIR}/run_id={check_run_id(run_id)}"


def artifact_object_path(root: str, run_id: str, sha256: str) -> str:
    """Where the bytes of digest ``sha256`` (64 lowercase hex digits) of a run are stored.

    Raises:
        UnsafeRunIdError: ``run_id`` is not a safe path segment.
        ValueError: ``sha256`` is not a hex SHA-256 digest.
    """
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ValueError(f"sha256 {sha256!r} is not 64 lowercase hex digits")
    return f"{artifacts_dir(root, run_id)}/sha256/{sha256[:2]}/{sha256}"


def artifact_path(*parts: str) -> str:
    """Join artifact path parts with ``/`` (empty parts dropped, a trailing ``/`` of a part
    ignored) and check the result.

    Raises:
        UnsafeArtifactPathError: the joined path could leave the run's artifacts.
    """
    return check_artifact_path("/".join(part.rstrip("/") for part in parts if part.rstrip("/")))
