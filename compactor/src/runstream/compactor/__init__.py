"""The compactor: metric points into Parquet files in the store, exactly once per identity;
run state snapshots beside them. The store layout and the file format are the contract's (:mod:`runstream.contract.layout`,
:mod:`runstream.contract.parquet`)."""

from runstream.compactor.buffer import BufferPolicy
from runstream.compactor.exceptions import (
    CompactorError,
    StoreAccessError,
    StoreWriteError,
)
from runstream.compactor.snapshots import Snapshots
from runstream.compactor.store import RetryPolicy, Store
from runstream.compactor.worker import Compactor, CompactorConfig, Stats

__all__ = [
    "BufferPolicy",
    "Compactor",
    "CompactorConfig",
    "CompactorError",
    "RetryPolicy",
    "Snapshots",
    "Stats",
    "Store",
    "StoreAccessError",
    "StoreWriteError",
]
