"""Issue 17's fuzz test (embedded mode, no servers): random and mutated messages interleaved
with good traffic go through the compactor (the embedded ``process``, which also folds run
state) and the query tail. Every good point is read back exactly once (from the Parquet
files by DuckDB, and from the tail), every bad message is in the dead-letter file with a
reason, and nothing raises."""

from __future__ import annotations

import uuid
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runstream.apps.embedded import dead_letter_path, process
from runstream.contract.deadletter import REASON
from runstream.contract.layout import METRICS_DIR
from runstream.core.deadletters import read_dead_letters
from runstream.core.locallog import LogWriter
from runstream.core.logsource import events_folder
from runstream.core.settings import Settings
from runstream.query.tail import LocalEventLog, Tail
from tests.fuzzing import points_of, traffic


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_bad_messages_never_stop_a_reader_nor_hide_good_points(
    tmp_path: Path, data: st.DataObject
) -> None:
    root = tmp_path / uuid.uuid4().hex
    config = Settings.resolve(f"file://{root}", environ={})
    goods, messages = traffic(data, data.draw(st.integers(1, 6)))
    writer = LogWriter(events_folder(config) / "writer.avro")
    for key, value, _ in messages:
        writer.append([(key, value)])
    writer.close()

    tail = Tail(LocalEventLog(events_folder(config)))
    assert tail.refresh() == len(messages)
    result = process(config)
    assert process(config).records == 0  # caught up; nothing to redo

    expected = points_of(goods)
    store = Path(config.store) / METRICS_DIR
    parquet = duckdb.sql(
        f"select producer_id, sequence, key, step, value from read_parquet('{store}/**/*.parquet')"
    ).fetchall()
    assert sorted(parquet) == expected
    in_tail = []
    for run_id in ("run-a", "run-b"):
        table = tail.points(run_id, {})
        in_tail += list(
            zip(
                *(
                    table[c].to_pylist()
                    for c in ("producer_id", "sequence", "key", "step", "value")
                ),
                strict=True,
            )
        )
    assert sorted(in_tail) == expected

    bad_count = sum(1 for *_, ok in messages if not ok)
    letters = list(read_dead_letters(dead_letter_path(config)))
    assert result.dead_letters == bad_count == tail.skipped == len(letters)
    assert sorted(letter["value"] for letter in letters) == sorted(
        v for _, v, ok in messages if not ok
    )
    assert all(letter["headers"][REASON] for letter in letters)
