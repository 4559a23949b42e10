"""Listing commands on pipes and small terminals: --output table|json|csv, --columns, and no
cell ever cut."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from runstream.core.settings import Settings
from runstream.query import cli as query_cli
from runstream.query import listing
from runstream.tracking import Client

LONG_NAME = "LR_run_5_renamed_with_a_rather_long_name_that_must_stay_whole"
LONG_COLLECTION = "Logistic_regression_collection_of_experiments"


@pytest.fixture
def uri(tmp_path: Path) -> Iterator[str]:
    settings = Settings.resolve(f"file://{tmp_path / 'tracking'}", environ={})
    client = Client(settings=settings, spill_dir=tmp_path / "spill")
    run = client.start_run("LR_run_5", LONG_COLLECTION, run_id="list-1", capture_code=False)
    run.log_param("lr", 0.05)
    run.log_metric("loss", 0.25)
    run.update_run_info(run_name=LONG_NAME)
    run.end()
    client.flush()
    yield str(settings.tracking_uri)
    client.close()


def invoke(*args: str) -> str:
    result = CliRunner().invoke(query_cli.runs, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_runs_in_a_pipe_keep_every_cell_whole(uri: str) -> None:
    out = invoke("--tracking-uri", uri)  # CliRunner's stdout is no terminal
    assert LONG_NAME in out and LONG_COLLECTION in out and "…" not in out
    header = out.splitlines()[0].split()
    assert header == list(query_cli.RUN_COLUMNS)


def test_runs_as_json_and_csv_with_chosen_columns(uri: str) -> None:
    rows = json.loads(invoke("--tracking-uri", uri, "--output", "json"))
    assert rows[0]["name"] == LONG_NAME and rows[0]["metrics"] == {"loss": 0.25}
    picked = json.loads(
        invoke("--tracking-uri", uri, "-o", "json", "--columns", "run_id,params.lr,metrics.loss")
    )
    assert picked == [{"run_id": "list-1", "params.lr": "0.05", "metrics.loss": 0.25}]
    text = invoke("--tracking-uri", uri, "-o", "csv", "--columns", "name,collection,status")
    assert list(csv.reader(io.StringIO(text))) == [
        ["name", "collection", "status"],
        [LONG_NAME, LONG_COLLECTION, "FINISHED"],
    ]


def test_narrow_terminal_gets_readable_default_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing, "terminal_width", lambda stream=None: 80)
    narrow = listing.default_columns(query_cli.RUN_COLUMNS, query_cli.NARROW_RUN_COLUMNS)
    assert narrow == ["run_id", "name", "collection", "status", "start", "metrics"]
    monkeypatch.setattr(listing, "terminal_width", lambda stream=None: 200)
    assert listing.default_columns(query_cli.RUN_COLUMNS, query_cli.NARROW_RUN_COLUMNS) == list(
        query_cli.RUN_COLUMNS
    )


def test_sql_and_artifacts_take_the_same_options(uri: str) -> None:
    result = CliRunner().invoke(
        query_cli.sql,
        ["SELECT run_id, name FROM runs", "--tracking-uri", uri, "-o", "json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"run_id": "list-1", "name": LONG_NAME}]
    result = CliRunner().invoke(query_cli.artifacts, ["list-1", "--tracking-uri", uri, "-o", "csv"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["path,size,media_type,sha256,uri"]


def test_a_terminal_table_folds_long_cells_never_cuts_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    monkeypatch.setattr(listing, "terminal_width", lambda stream=None: 60)
    rows = [{"run_id": "list-1", "name": LONG_NAME, "collection": LONG_COLLECTION}]
    listing.emit(rows, ["run_id", "name", "collection"], "table", "1 run(s)")
    out = capsys.readouterr().out
    assert "…" not in out
    cells = [line.split("│") for line in out.splitlines() if line.count("│") == 4]
    column = "".join(cell[2].strip() for cell in cells)  # the name column, folded
    assert column == LONG_NAME
    assert max(len(line) for line in out.splitlines()) <= 60
