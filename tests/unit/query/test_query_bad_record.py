"""Issue 17: one malformed message between two runs' log files breaks no read: ``runs``,
``sql`` and ``history`` answer, and a long-lived engine shows every point on every call."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from runstream.contract import Codec, EventBatch, MetricColumns, Producer, encode_batch
from runstream.core.locallog import LogWriter
from runstream.core.logsource import events_folder
from runstream.core.settings import Settings
from runstream.query import QueryEngine
from runstream.query import cli as query_cli
from runstream.tracking import Client

BROKEN = [
    # a key index past the batch's keys: an IndexError in every reader before issue 17
    EventBatch("r-bad", Producer("x", "h", 1), 0, (), MetricColumns(["a"], [5], [1], [1.0], [1])),
    EventBatch("../../x", Producer("x", "h", 1), 0),
    EventBatch(
        "r-1",
        Producer("x", "h", 1),
        2**63 - 1,
        (),
        MetricColumns(["a"], [0, 0], [1, 2], [1.0, 2.0], [1, 1]),
    ),
]


def test_a_malformed_message_breaks_no_read(tmp_path: Path) -> None:
    settings = Settings.resolve(f"file://{tmp_path / 'tracking'}", environ={})
    for run_id in ("r-1", "r-2"):
        client = Client(settings=settings, spill_dir=tmp_path / "spill")
        run = client.start_run(run_id=run_id, capture_code=False)
        for step in range(5000):
            run.log_metric("loss", float(step), step=step)
        run.end()
        client.close()
        if run_id == "r-1":  # the bad messages sit between the two runs' files
            writer = LogWriter(events_folder(settings) / "broken.avro")
            writer.append([(b.run_id, encode_batch(Codec(), b)) for b in BROKEN])
            writer.append([("r-1", b"not avro at all")])
            writer.close()

    uri = str(settings.tracking_uri)
    runner = CliRunner()
    for command, args in (
        (query_cli.runs, []),
        (query_cli.sql, ["SELECT count(*) AS n FROM metric_history"]),
        (query_cli.history, ["r-2", "loss"]),
    ):
        result = runner.invoke(command, [*args, "--tracking-uri", uri])
        assert result.exit_code == 0, result.output
    assert "r-1" in runner.invoke(query_cli.runs, ["--tracking-uri", uri]).output

    with QueryEngine.from_settings(settings) as engine:  # the UI's long-lived engine
        for _ in range(5):
            total = engine.sql("SELECT count(*) AS n FROM metric_history").to_pylist()
            assert total == [{"n": 10_000}]
            assert sorted(r.run_id for r in engine.search_runs()) == ["r-1", "r-2"]


def test_runs_shows_ten_metrics_per_run_and_counts_the_rest(tmp_path: Path) -> None:
    settings = Settings.resolve(f"file://{tmp_path / 'tracking'}", environ={})
    client = Client(settings=settings, spill_dir=tmp_path / "spill")
    run = client.start_run(run_id="wide", capture_code=False)
    run.log_metrics({f"m{i:03d}": float(i) for i in range(300)})
    run.end()
    client.close()
    result = CliRunner().invoke(
        query_cli.runs, ["--tracking-uri", str(settings.tracking_uri)], env={"COLUMNS": "1000"}
    )
    assert result.exit_code == 0, result.output
    assert "+290 more" in result.output
    assert "m299" not in result.output
