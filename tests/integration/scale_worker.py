"""One SDK process of the scale test: logs its share of runs to the cluster at a steady pace,
times every SDK call, and writes what it logged (the ground truth) as JSON.

Usage: python scale_worker.py BOOTSTRAP PREFIX WORKER RUNS STEPS SECONDS OUT SPILL_DIR
(BOOTSTRAP ``floor``: the same loop without the SDK, the peer that measures the machine.)
Metric ``k{j}`` of a run has one point per step 0..STEPS-1 with value step * 0.5 + j.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runstream.core.settings import Settings
from runstream.tracking import Client

KEYS = ("k0", "k1", "k2", "k3")
LINE_EVERY = 100  # a log line per run every this many steps


class FloorRun:
    """The peer of a run in the floor process: each call appends to a list in Python, as the
    SDK's callers' cost floor does, with no thread and no I/O behind it."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.items: list[tuple[Any, ...]] = []

    def log_param(self, key: str, value: str) -> None:
        self.items.append((key, value))

    def set_tag(self, key: str, value: str) -> None:
        self.items.append((key, value))

    def log_metric(self, key: str, value: float, step: int) -> None:
        self.items.append((key, value, step))

    def log(self, message: str, level: str, metadata: dict[str, str]) -> None:
        self.items.append((message, level, metadata))

    def end(self) -> None:
        self.items.clear()


class FloorClient:
    """The floor process's client (BOOTSTRAP ``floor``): how long a process of this machine
    is stalled by the machine alone, at the same pace, timed the same way."""

    def start_run(self, name: str, collection: str, run_id: str) -> FloorRun:
        return FloorRun(run_id)

    def flush(self, timeout: float) -> None:
        return None

    def close(self, timeout: float) -> int:
        return 0


class Timer:
    """The longest time of each SDK call (by name), and when it happened. The process's first
    ``start_run`` is kept apart."""

    def __init__(self) -> None:
        self.max_s: dict[str, float] = {}
        self.max_at: dict[str, str] = {}  # when (wall clock) the longest call of a name began
        self.calls = 0

    def call(self, name: str, function: Callable[..., Any], *args: Any) -> Any:
        start = time.perf_counter()
        result = function(*args)
        took = time.perf_counter() - start
        if name == "start_run" and self.calls == 0:
            name = "first start_run"
        self.calls += 1
        if took > self.max_s.get(name, 0.0):
            self.max_s[name] = took
            self.max_at[name] = time.strftime("%X")
        return result


def main(
    bootstrap: str,
    prefix: str,
    worker: int,
    runs: int,
    steps: int,
    seconds: float,
    out: Path,
    spill: Path,
) -> None:
    client: Any
    if bootstrap == "floor":
        client = FloorClient()
    else:
        settings = Settings.resolve(f"kafka://{bootstrap}", topic_prefix=prefix, environ={})
        client = Client(settings=settings, spill_dir=spill)
    timer = Timer()
    truth: dict[str, Any] = {}
    handles = []
    for r in range(runs):
        run_id = f"w{worker}r{r}"
        run = timer.call("start_run", client.start_run, f"scale {run_id}", "scale", run_id)
        params = {"lr": str(0.001 * (r + 1)), "worker": str(worker), "batch": str(32 * (r + 1))}
        for key, value in params.items():
            timer.call("log_param", run.log_param, key, value)
        timer.call("set_tag", run.set_tag, "phase", "warmup")
        handles.append(run)
        truth[run_id] = {"params": params, "lines": 0}
    start = time.monotonic()
    for step in range(steps):
        for run in handles:
            for j, key in enumerate(KEYS):
                timer.call("log_metric", run.log_metric, key, step * 0.5 + j, step)
            if step % LINE_EVERY == 0:
                timer.call("log", run.log, f"step {step}", "info", {"step": str(step)})
                truth[run.run_id]["lines"] += 1
            if step == steps // 2:
                timer.call("set_tag", run.set_tag, "phase", "train")
        ahead = start + seconds * (step + 1) / steps - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    for run in handles:
        timer.call("end", run.end)
        truth[run.run_id]["tags"] = {"phase": "train" if steps > steps // 2 else "warmup"}
        truth[run.run_id]["status"] = "FINISHED"
    logging_s = time.monotonic() - start
    client.flush(180.0)
    left = client.close(60.0)
    out.write_text(
        json.dumps(
            {
                "runs": truth,
                "keys": list(KEYS),
                "steps": steps,
                "points": runs * steps * len(KEYS),
                "calls": timer.calls,
                "max_ms": {name: took * 1000 for name, took in timer.max_s.items()},
                "max_at": timer.max_at,
                "logging_s": logging_s,
                "unacknowledged": left,
            }
        )
    )


if __name__ == "__main__":
    main(
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        int(sys.argv[4]),
        int(sys.argv[5]),
        float(sys.argv[6]),
        Path(sys.argv[7]),
        Path(sys.argv[8]),
    )
