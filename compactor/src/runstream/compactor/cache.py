"""The tables of the part files a worker wrote, kept in memory until their run is merged.

Merging an ended run then needs no read-back of the files it just wrote: the merge takes
each live file's table (and rollup) from here when it has it, and reads only the others
from the store.
The cache holds at most ``budget_rows`` rows over all runs; a table that does not fit is
simply not kept (its file is read back at merge time). Thread-safe: the write tasks fill it.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass

import pyarrow as pa

Key = tuple[int, str]


@dataclass(frozen=True, slots=True)
class WrittenFile:
    """What one written metric file holds: its points and its rollup."""

    table: pa.Table
    rollup: pa.Table

    @property
    def num_rows(self) -> int:
        """The file's rows."""
        return int(self.table.num_rows)


class TableCache:
    """Tables by run buffer (``(partition, run id)``) and file path, within a row budget.

    Args:
        budget_rows: most rows held over all keys; 0 disables the cache.
    """

    def __init__(self, budget_rows: int) -> None:
        self._budget = budget_rows
        self._rows = 0
        self._tables: dict[Key, dict[str, WrittenFile]] = {}
        self._lock = threading.Lock()

    def put(self, key: Key, path: str, table: WrittenFile) -> bool:
        """Keep ``table`` as the content of ``path`` if it fits the budget; whether it was."""
        with self._lock:
            if self._rows + table.num_rows > self._budget:
                return False
            tables = self._tables.setdefault(key, {})
            old = tables.pop(path, None)
            self._rows += table.num_rows - (old.num_rows if old is not None else 0)
            tables[path] = table
            return True

    def take(self, key: Key) -> dict[str, WrittenFile]:
        """Remove and return every table kept for ``key`` (path -> table)."""
        with self._lock:
            tables = self._tables.pop(key, {})
            self._rows -= sum(table.num_rows for table in tables.values())
            return tables

    def drop_partitions(self, partitions: Collection[int]) -> None:
        """Forget every table kept for a run buffer of one of ``partitions``."""
        with self._lock:
            for key in [k for k in self._tables if k[0] in partitions]:
                self._rows -= sum(table.num_rows for table in self._tables.pop(key).values())

    @property
    def rows(self) -> int:
        """Rows held now."""
        with self._lock:
            return self._rows
