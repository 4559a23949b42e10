"""The query engine in embedded mode (file:// tracking URI, no server): the real SDK writes
the local log, the real compactor (``runstream.core.logsource.process``) writes part of it to local
Parquet, and the answers equal the ground truth, tail included."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.image import imread

from runstream.apps.embedded import process
from runstream.core.settings import Settings
from runstream.query import QueryEngine
from runstream.query import cli as query_cli
from runstream.query.plots import plot_histories
from runstream.tracking import Client


def wave(step: int) -> float:
    return math.cos(step / 30.0) + (50.0 if step == 333 else 0.0)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.resolve(f"file://{tmp_path / 'tracking'}", environ={})


@pytest.fixture
def logged(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Run "emb-1": 600 loss points compacted, then 400 more only in the local log; run
    "emb-2" finished with 100 points over the same steps."""
    client = Client(settings=settings, spill_dir=tmp_path / "spill")
    run = client.start_run("first", "exp", run_id="emb-1", tags={"team": "a"}, capture_code=False)
    run.log_param("lr", "0.5")
    for step in range(600):
        run.log_metric("loss", wave(step), step=step)
    run.flush()
    process(settings)  # the compactor writes what the log holds so far
    for step in range(600, 1000):
        run.log_metric("loss", wave(step), step=step)
    other = client.start_run("second", "exp", run_id="emb-2", capture_code=False)
    for step in range(0, 1000, 10):
        other.log_metric("loss", 1.0 / (step + 1), step=step)
    other.end("FINISHED")
    client.flush()
    yield settings
    client.close()


def test_history_and_runs_equal_the_ground_truth(logged: Settings) -> None:
    with QueryEngine.from_settings(logged) as engine:
        history = engine.get_metric_history("emb-1", "loss")
        assert history["step"].to_pylist() == list(range(1000))
        assert history["value"].to_pylist() == [wave(s) for s in range(1000)]
        stored = engine.sql(
            "SELECT count(*) AS n FROM metric_history WHERE run_id = 'emb-1' AND \"offset\" >= 0"
        ).to_pylist()
        assert stored == [{"n": 1000}]
        run = engine.get_run("emb-1")
        assert (run.name, run.collection, run.status) == ("first", "exp", "RUNNING")
        assert run.params == {"lr": "0.5"} and run.tags == {"team": "a"}
        assert run.metrics["loss"].step == 999 and run.metrics["loss"].max == wave(333)
        assert [r.run_id for r in engine.search_runs("status = 'FINISHED'")] == ["emb-2"]


def test_downsample_keeps_min_max_and_last(logged: Settings) -> None:
    with QueryEngine.from_settings(logged) as engine:
        buckets = engine.get_metric_history("emb-1", "loss", max_points=10)
    values = np.array([wave(s) for s in range(1000)])
    assert buckets["max"].to_pylist() == [values[i : i + 100].max() for i in range(0, 1000, 100)]
    assert buckets["min"].to_pylist() == [values[i : i + 100].min() for i in range(0, 1000, 100)]
    assert buckets["value"].to_pylist() == [values[i + 99] for i in range(0, 1000, 100)]
    assert max(buckets["max"].to_pylist()) == wave(333)


def test_plot_is_a_png_with_curves(logged: Settings, tmp_path: Path) -> None:
    with QueryEngine.from_settings(logged) as engine:
        histories = {
            run_id: engine.get_metric_history(run_id, "loss", max_points=200)
            for run_id in ("emb-1", "emb-2")
        }
    path = plot_histories(histories, tmp_path / "loss.png", title="loss", ylabel="loss")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
    pixels = imread(path)
    assert pixels.shape[0] >= 400 and pixels.shape[1] >= 800
    assert pixels[..., :3].std() > 0.05
    # matplotlib's first two colours (C0 blue, C1 orange) are drawn
    rgb = (pixels[..., :3] * 255).round().astype(int)
    assert (np.abs(rgb - [31, 119, 180]).sum(axis=-1) < 30).sum() > 200
    assert (np.abs(rgb - [255, 127, 14]).sum(axis=-1) < 30).sum() > 50


def test_cli_commands(logged: Settings, tmp_path: Path) -> None:
    uri = str(logged.tracking_uri)
    runner = CliRunner()
    result = runner.invoke(query_cli.runs, ["collection = 'exp'", "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    assert "emb-1" in result.output and "emb-2" in result.output
    csv_path, png_path = tmp_path / "h.csv", tmp_path / "h.png"
    result = runner.invoke(
        query_cli.history,
        ["emb-1", "loss", "--csv", str(csv_path), "--plot", str(png_path), "--tracking-uri", uri],
    )
    assert result.exit_code == 0, result.output
    assert len(csv_path.read_text().splitlines()) == 1001
    assert png_path.stat().st_size > 10_000
    result = runner.invoke(
        query_cli.compare,
        [
            "emb-1",
            "emb-2",
            "--key",
            "loss",
            "--plot",
            str(tmp_path / "c.png"),
            "--tracking-uri",
            uri,
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        query_cli.sql,
        [
            "SELECT key, value FROM params WHERE run_id = ?",
            "--param",
            "emb-1",
            "--tracking-uri",
            uri,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "lr" in result.output and "0.5" in result.output


def test_threads_query_one_engine_at_once(logged: Settings) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with QueryEngine.from_settings(logged) as engine:

        def ask(i: int) -> tuple[int, int, int]:
            history = engine.get_metric_history("emb-1" if i % 2 else "emb-2", "loss")
            runs = engine.search_runs("collection = 'exp'")
            counted = engine.sql("SELECT count(*) AS n FROM params").to_pylist()[0]["n"]
            return history.num_rows, len(runs), counted

        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(ask, range(16)))
    assert answers == [(100, 2, 1) if i % 2 == 0 else (1000, 2, 1) for i in range(16)]
