"""The UI's 10M-point chart, end to end in a real browser, next to the query it stands on.

    .venv/bin/python benchmarks/bench_ui.py [--points 10000000] [--repeat 5]

Writes one run's metric of --points steps at the store layout (Parquet, local folder), serves
the UI over it (uvicorn, 127.0.0.1), opens the compare page in Debian's headless Chromium
(Playwright) and times, per load: navigation to rendered chart (wall), the page's own
request-to-rendered figure (fetch of the downsample + JSON + uPlot draw), and the engine's
downsample alone (the peer). The files are re-encoded as the compactor writes them (its
Parquet encoding, each with its rollup). Target: a 10M-point metric charts in under 1 s end to
end, on the first load too (a fresh server reads the files); MLflow's get_metric_history of
--mlflow-points on sqlite, scaled to --points, is the peer (MLflow has no downsample). Prints
medians (the first load separately) and ratios against the target and MLflow.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_query import mlflow_store, timings

from runstream.contract.layout import run_dir
from runstream.contract.parquet import decode, encode, rollup_table
from runstream.core.filesystem import open_store
from runstream.core.settings import Settings
from runstream.query import QueryEngine
from runstream.query.tail import EmptyEventLog
from runstream.ui import Backend
from tests.integration.ui.conftest import CHROMIUM, CHROMIUM_ARGS, Served, write_metric


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mlflow-points", type=int, default=1_000_000)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.resolve("noop://", str(Path(folder) / "store"), environ={})
        fs, root = open_store(settings)
        started = time.perf_counter()
        write_metric(fs, root, "big", "loss", args.points)
        as_compacted(fs, root, "big")
        print(f"wrote {args.points:,} points in {time.perf_counter() - started:.1f} s")
        cold_query = cold_downsample(fs, root)
        engine = QueryEngine(EmptyEventLog(), fs, root)
        served = Served(Backend(engine, None, {"tracking_uri": "noop://"}))
        walls, renders, points = [], [], 0
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                for _ in range(args.repeat + 1):
                    started = time.perf_counter()
                    page.goto(f"{served.url}/compare?run=big&key=loss")
                    page.wait_for_selector(".chart[data-state=ready]", timeout=60_000)
                    walls.append((time.perf_counter() - started) * 1000)
                    chart = page.locator(".chart")
                    renders.append(float(chart.get_attribute("data-render-ms") or "nan"))
                    points = int(chart.get_attribute("data-points") or 0)
                browser.close()
            query = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                engine.get_metric_history("big", "loss", max_points=points or 1000)
                query.append((time.perf_counter() - started) * 1000)
        finally:
            served.stop()
        with tempfile.TemporaryDirectory() as mlflow_folder:
            history = mlflow_store(args.mlflow_points, Path(mlflow_folder))
            _, mlflow_ms, _ = timings(history, 1)
    mlflow_ms *= args.points / args.mlflow_points
    wall, render, peer = (statistics.median(x) for x in (walls[1:], renders[1:], query))
    print(f"chart of {args.points:,} points as {points} min/max/last buckets, 1400 px wide page")
    print(
        f"peer: mlflow get_metric_history, {mlflow_ms:.0f} ms (scaled from {args.mlflow_points:,})"
    )
    for name, ms, target in [
        ("first load, page (fresh server)", walls[0], 1000.0),
        ("first load, request->rendered", renders[0], 1000.0),
        (f"warm page, median of {args.repeat}", wall, 1000.0),
        ("warm request->rendered", render, 1000.0),
        ("engine downsample, cold", cold_query, 300.0),
        ("engine downsample, warm", peer, 300.0),
    ]:
        verdict = "meets" if ms <= target else "misses"
        print(
            f"  {name:34s} {ms:7.0f} ms  /target({target:g}) = {ms / target:5.2f} ({verdict})"
            f"  mlflow / this = {mlflow_ms / ms:6.1f}x"
        )
    print(f"request->rendered / engine downsample (warm): {render / peer:.2f}x")


def as_compacted(fs: object, root: str, run_id: str) -> None:
    """Rewrite a run's metric files as the compactor writes them: its encoding, rollup in
    the footer."""
    for path in fs.ls(run_dir(root, run_id), detail=False):  # type: ignore[attr-defined]
        table = decode(fs.cat_file(path), path)  # type: ignore[attr-defined]
        fs.pipe_file(path, encode(table, rollup_table(table)))  # type: ignore[attr-defined]


def cold_downsample(fs: object, root: str) -> float:
    """ms of a 1,000-bucket downsample on a fresh engine (imports and DuckDB warmed first)."""
    with QueryEngine(EmptyEventLog(), fs, root) as engine:
        engine.sql("SELECT 1")
    with QueryEngine(EmptyEventLog(), fs, root) as engine:
        started = time.perf_counter()
        engine.get_metric_history("big", "loss", max_points=1000)
        return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    main()
