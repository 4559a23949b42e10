"""Fixtures of the compactor's unit tests: events built with schemas, an in-memory source."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from runstream.contract import Codec, EventBatch, encode_batch
from runstream.core.source import Record
from tests import batches


class ListSource:
    """An EventSource over a fixed list of records, per partition, resuming at ``start``."""

    def __init__(self, records: Sequence[Record], start: Mapping[int, int] | None = None) -> None:
        self.records = [r for r in records if r.offset >= (start or {}).get(r.partition, 0)]
        self.committed: dict[int, int] = dict(start or {})
        self._at = 0

    def poll(self, max_records: int, timeout: float) -> list[Record]:
        taken = self.records[self._at : self._at + max_records]
        self._at += len(taken)
        return taken

    def commit(self, positions: Mapping[int, int]) -> None:
        self.committed.update(positions)

    def close(self) -> None:
        pass

    @property
    def exhausted(self) -> bool:
        return self._at >= len(self.records)


@pytest.fixture
def metric_batch():  # type: ignore[no-untyped-def]
    """Build a batch of metric columns: ``metric_batch(run, producer, first_seq, keys,
    start_step, count, ended=False)``."""
    return batches.metric_batch


@pytest.fixture
def make_source():  # type: ignore[no-untyped-def]
    """Build an in-memory source: ``make_source(records, start=None)``."""
    return ListSource


@pytest.fixture
def codec() -> Codec:
    return Codec()


@pytest.fixture
def records_of(codec: Codec):  # type: ignore[no-untyped-def]
    """Turn (partition, batch) pairs into records with consecutive offsets per partition."""

    def build(batches: Sequence[tuple[int, EventBatch]]) -> list[Record]:
        offsets: dict[int, int] = {}
        records = []
        for partition, batch in batches:
            offset = offsets.get(partition, 0)
            offsets[partition] = offset + 1
            records.append(
                Record(partition, offset, batch.run_id.encode(), encode_batch(codec, batch))
            )
        return records

    return build
