"""The compactor: metric points into Parquet files in the store, exactly once per identity;
run state snapshots beside them. See ``DESIGN.md`` section 5."""

from compactor.buffer import BufferPolicy
from compactor.exceptions import (
    CompactorError,
    CorruptPartError,
    StoreAccessError,
    StoreWriteError,
)
from compactor.snapshots import Snapshots
from compactor.store import RetryPolicy, Store
from compactor.worker import Compactor, CompactorConfig, Stats

__all__ = [
    "BufferPolicy",
    "Compactor",
    "CompactorConfig",
    "CompactorError",
    "CorruptPartError",
    "RetryPolicy",
    "Snapshots",
    "Stats",
    "Store",
    "StoreAccessError",
    "StoreWriteError",
]
