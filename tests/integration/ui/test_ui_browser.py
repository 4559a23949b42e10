"""The UI in a real browser (Debian's headless Chromium, Playwright) over the demo dataset:
filter the runs table, open a run, count a chart's points, compare two runs, watch a live
run's chart grow, and chart a 10M-point metric. Screenshots go to test-output/ui/."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from runstream.core.filesystem import open_store
from runstream.core.settings import Settings
from runstream.query import QueryEngine
from runstream.query.tail import EmptyEventLog
from runstream.tracking import Client
from runstream.ui import Backend
from tests.integration.ui.conftest import Served, write_metric

pytestmark = pytest.mark.integration

STEPS = 200
CHART = ".chart[data-title='{}']"


def ready(page: Page, title: str, points: str | None = None, timeout: float = 20_000) -> None:
    """Wait until the chart titled ``title`` has drawn (``points`` of them, if given)."""
    selector = CHART.format(title) + "[data-state=ready]"
    if points is not None:
        selector += f"[data-points='{points}']"
    page.wait_for_selector(selector, timeout=timeout)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """``runstream demo`` (3 runs x 2 workers x 200 steps) in a folder of its own."""
    folder = tmp_path_factory.mktemp("demo")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "runstream.apps.cli",
            "demo",
            "--runs",
            "3",
            "--workers",
            "2",
            "--steps",
            str(STEPS),
        ],
        cwd=folder,
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(Path.cwd())} | {"RUNSTREAM_TRACKING_URI": ""},
    )
    return Settings.resolve(f"file://{folder / 'runstream-data'}", environ={})


def test_runs_table_run_page_and_compare(
    demo: Settings, serve: type[Served], page: Page, shots: Path
) -> None:
    ui = serve(Backend.from_settings(demo))
    page.goto(ui.url + "/")
    rows = page.locator("#runs tbody tr")
    expect(rows).to_have_count(3)
    page.fill("#filter", "params.optimizer.lr >= 0.001")
    page.click("form.filter button")
    expect(rows).to_have_count(2)
    expect(page.locator("#run-count")).to_have_text("2 runs")
    page.screenshot(path=shots / "runs-filtered.png")
    page.fill("#filter", "params.optimizer.lr >>")
    page.click("form.filter button")
    expect(page.locator("#filter-error")).to_contain_text("position")
    page.fill("#filter", "")
    page.click("form.filter button")
    expect(rows).to_have_count(3)

    with QueryEngine.from_settings(demo) as engine:
        best = engine.search_runs(order_by=["metrics.`val/loss` ASC"])[0]
        val_points = engine.get_metric_history(best.run_id, "val/loss").num_rows
    page.click(f"a.run-link:text-is('{best.run_id}')")
    ready(page, "train/loss", str(STEPS))
    ready(page, "val/loss", str(val_points))
    expect(page.locator("#params")).to_contain_text("optimizer.lr")
    expect(page.locator("#logs .log")).to_have_count(2)
    page.select_option("#log-level", "warn")
    expect(page.locator("#logs .log")).to_have_count(0)
    page.screenshot(path=shots / "run.png", full_page=True)

    page.goto(ui.url + "/")
    expect(rows).to_have_count(3)
    boxes = page.locator("input.select-run")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.select_option("#compare-key", "train/loss")
    page.click("#compare")
    page.wait_for_url("**/compare?**")
    ready(page, "train/loss", f"{STEPS},{STEPS}")
    page.screenshot(path=shots / "compare.png")


def test_a_live_run_grows_without_a_reload(
    demo: Settings, serve: type[Served], page: Page, shots: Path, tmp_path: Path
) -> None:
    client = Client(settings=demo, spill_dir=tmp_path / "spill")
    run = client.start_run("live", "live-test", run_id=f"live-{os.getpid()}", capture_code=False)
    for step in range(50):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    run.flush()
    ui = serve(Backend.from_settings(demo))
    try:
        page.goto(f"{ui.url}/runs/{run.run_id}")
        ready(page, "loss", "50")
        expect(page.locator(".run-head .status")).to_have_text("RUNNING")
        page.screenshot(path=shots / "live-before.png")
        for step in range(50, 120):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metric("accuracy", 0.5, step=119)
        run.flush()
        ready(page, "loss", "120")  # polled, no reload
        ready(page, "accuracy", "1")
        page.screenshot(path=shots / "live-after.png")
        run.end("FINISHED")
        client.flush()
        expect(page.locator(".run-head .status")).to_have_text("FINISHED", timeout=20_000)
    finally:
        client.close()


def test_ten_million_points_chart_in_under_a_second(
    serve: type[Served], page: Page, shots: Path, tmp_path: Path
) -> None:
    points = 10_000_000
    settings = Settings.resolve("noop://", str(tmp_path / "store"), environ={})
    fs, root = open_store(settings)
    write_metric(fs, root, "big", "loss", points)
    backend = Backend(QueryEngine(EmptyEventLog(), fs, root), None, {"tracking_uri": "noop://"})
    ui = serve(backend)
    timings = []
    for attempt in range(3):  # the first reads the Parquet files, the next hit the cache
        started = time.perf_counter()
        page.goto(f"{ui.url}/compare?run=big&key=loss")
        ready(page, "loss", timeout=60_000)
        wall = (time.perf_counter() - started) * 1000
        chart = page.locator(CHART.format("loss"))
        render = float(chart.get_attribute("data-render-ms") or "nan")
        drawn = int(chart.get_attribute("data-points") or 0)
        timings.append((wall, render))
        print(f"10M points, load {attempt}: page {wall:.0f} ms, request->rendered {render:.0f} ms")
        assert 0 < drawn <= int(chart.get_attribute("data-max-points") or 0)
    page.screenshot(path=shots / "ten-million.png")
    # the spike at step 5,000,000 is in one bucket's max: zoom to it and it is still there
    mid = points // 2
    body = page.evaluate(
        f"fetch('/api/history?run=big&key=loss&max_points=1000&start_step={mid - 5000}"
        f"&end_step={mid + 5000}').then(r => r.json())"
    )
    assert max(body["max"]) == 100.0
    assert min(render for _, render in timings[1:]) < 1000, timings
