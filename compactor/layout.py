"""The store's layout: where every Parquet file lives and what columns it has. One place.

::

    {store}/metrics/run_id={run}/part-{partition}-{first_offset}-{last_offset}.parquet
    {store}/runs/...                 (run state snapshots: see RUNS_DIR)

Offsets are zero-padded to 20 digits so that names sort in offset order. A run id is one
safe path segment (the SDK validates it; :func:`run_dir` re-checks), so no id can reach
another run's files.
"""

from __future__ import annotations

import re

import pyarrow as pa

from schemas.identifiers import check_run_id

METRICS_DIR = "metrics"
RUNS_DIR = "runs"
_PART = re.compile(r"^part-(?P<partition>\d+)-(?P<first>\d+)-(?P<last>\d+)\.parquet$")

METRIC_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("step", pa.int64(), nullable=False),
        pa.field("timestamp", pa.int64(), nullable=False),  # ms since the epoch
        pa.field("value", pa.float64(), nullable=False),
        pa.field("producer_id", pa.string(), nullable=False),
        pa.field("sequence", pa.int64(), nullable=False),
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
    ]
)
SORT_KEYS = [("key", "ascending"), ("step", "ascending")]
COMPRESSION = "zstd"


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


def parse_part_name(name: str) -> tuple[int, int, int] | None:
    """(partition, first offset, last offset) of a part file name, or None if it is not one."""
    match = _PART.match(name.rsplit("/", 1)[-1])
    if match is None:
        return None
    return int(match["partition"]), int(match["first"]), int(match["last"])


def metrics_glob(root: str) -> str:
    """A glob matching every metric file of every run."""
    return f"{root}/{METRICS_DIR}/run_id=*/*.parquet"
