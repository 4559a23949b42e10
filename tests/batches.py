"""Event batches for tests: metric columns built with the schemas, one shape everywhere."""

from __future__ import annotations

from collections.abc import Sequence

from runstream.contract import Event, EventBatch, MetricColumns, Producer, RunEnded


def metric_batch(
    run_id: str,
    producer: str,
    first_sequence: int,
    keys: Sequence[str],
    start_step: int,
    count: int,
    ended: bool = False,
    time_us: int = 1,
) -> EventBatch:
    """``count`` steps of every key in ``keys`` from ``start_step``; value = step * 0.5 + key
    index; a RunEnded at ``time_us`` after the points when ``ended`` (it takes the next
    sequence)."""
    columns = MetricColumns(keys=list(keys))
    for step in range(start_step, start_step + count):
        for index in range(len(keys)):
            columns.key_index.append(index)
            columns.steps.append(step)
            columns.values.append(step * 0.5 + index)
            columns.timestamps.append(1_700_000_000_000 + step)
    events = (Event(time_us, RunEnded("FINISHED", time_us)),) if ended else ()
    return EventBatch(run_id, Producer(producer, "host", 1), first_sequence, events, columns)
