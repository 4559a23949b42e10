"""A run with many metric keys (issue 17): wall time and peak memory of ``runstream process``
and ``runstream runs`` in embedded mode, each in its own process, against the same commands
over a run of one key (the peer: interpreter start and imports).

    .venv/bin/python benchmarks/bench_wide_run.py [--keys 1000000]

Needs no server; works in a temporary folder.

Figures (2 cores shared with other work, load average 15-21, 2026-12-05):

    process  1,000,000 keys:    3.6 s, peak RSS    530 MB; 1 key:   0.5 s,  106 MB; ratio   6.8x time,  5.0x memory
    runs     1,000,000 keys:    6.2 s, peak RSS    639 MB; 1 key:   1.3 s,  178 MB; ratio   4.9x time,  3.6x memory

Before issue 17's second part, on the same machine: process 875-955 MB, runs 10.6 s (more
under load) and 1.0-1.1 GB (the issue: process 37 s and 5.0 GB; runs 9.4 minutes and 2 GB).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runstream.core.settings import Settings
from runstream.tracking import Client


def log_wide_run(folder: Path, keys: int) -> str:
    """Log one run with ``keys`` distinct metric keys, one point each; its tracking URI."""
    uri = f"file://{folder / 'tracking'}"
    client = Client(settings=Settings.resolve(uri, environ={}), spill_dir=folder / "spill")
    run = client.start_run(run_id="wide", capture_code=False)
    for i in range(keys):
        run.log_metric(f"m{i:07d}", 1.0, step=1)
    run.end()
    client.close()
    return uri


def measure(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a command run in a child process."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{command} failed with status {status}")
    child.returncode = 0
    return elapsed, usage.ru_maxrss / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=1_000_000)
    args = parser.parse_args()
    cli = [sys.executable, "-m", "runstream.apps.cli"]
    with tempfile.TemporaryDirectory(prefix="runstream-wide-") as folder:
        uris = {count: log_wide_run(Path(folder) / str(count), count) for count in (1, args.keys)}
        for name in ("process", "runs"):
            peer_seconds, peer_mb = measure([*cli, name, "--tracking-uri", uris[1]])
            seconds, mb = measure([*cli, name, "--tracking-uri", uris[args.keys]])
            print(
                f"{name:8s} {args.keys:>9,d} keys: {seconds:6.1f} s, peak RSS {mb:6.0f} MB; "
                f"1 key: {peer_seconds:5.1f} s, {peer_mb:4.0f} MB; ratio "
                f"{seconds / peer_seconds:5.1f}x time, {mb / peer_mb:4.1f}x memory"
            )


if __name__ == "__main__":
    main()
