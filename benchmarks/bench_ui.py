"""The UI's 10M-point chart, end to end in a real browser, next to the query it stands on.

    .venv/bin/python benchmarks/bench_ui.py [--points 10000000] [--repeat 5]

Writes one run's metric of --points steps at the store layout (Parquet, local folder), serves
the UI over it (uvicorn, 127.0.0.1), opens the compare page in Debian's headless Chromium
(Playwright) and times, per load: navigation to rendered chart (wall), the page's own
request-to-rendered figure (fetch of the downsample + JSON + uPlot draw), and the engine's
downsample alone (the peer). Target: a 10M-point metric charts in under 1 s end to end.
Prints medians (first load separately: it reads the Parquet files) and ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from query import QueryEngine
from query.tail import EmptyEventLog
from runstream.filesystem import open_store
from runstream.settings import Settings
from tests.integration.ui.conftest import CHROMIUM, CHROMIUM_ARGS, Served, write_metric
from ui import Backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.resolve("noop://", str(Path(folder) / "store"), environ={})
        fs, root = open_store(settings)
        started = time.perf_counter()
        write_metric(fs, root, "big", "loss", args.points)
        print(f"wrote {args.points:,} points in {time.perf_counter() - started:.1f} s")
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
    wall, render, peer = (statistics.median(x) for x in (walls[1:], renders[1:], query))
    print(f"chart of {args.points:,} points as {points} min/max/last buckets, 1400 px wide page")
    print(
        f"first load (reads Parquet): page {walls[0]:.0f} ms, request->rendered {renders[0]:.0f} ms"
    )
    print(f"warm, median of {args.repeat}: page {wall:.0f} ms, request->rendered {render:.0f} ms")
    print(f"engine downsample alone (peer): {peer:.0f} ms")
    print(f"request->rendered / engine downsample: {render / peer:.2f}x")
    verdict = "meets" if wall < 1000 else "misses"
    print(f"target < 1000 ms end to end (warm page load): {wall:.0f} ms, {verdict}")


if __name__ == "__main__":
    main()
