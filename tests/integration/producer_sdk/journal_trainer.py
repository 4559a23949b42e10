"""A training process for the journal tests: logs one metric at full speed (or at a given
rate) until it is killed, and records how many points it has had accepted.

Every ``REPORT`` points it appends ``<accepted> <time.monotonic_ns()>`` to a side file with
one unbuffered ``os.write``, so the test can tell how many points were accepted before any
moment (CLOCK_MONOTONIC is one clock for every process of the machine).

Usage: python journal_trainer.py TRACKING_URI RUN_ID SIDE_FILE [POINTS_PER_SECOND]
(the spill folder and topic prefix come from RUNSTREAM_SPILL_DIR / RUNSTREAM_TOPIC_PREFIX;
0 points per second is full speed).
"""

from __future__ import annotations

import os
import sys
import time

from runstream.tracking import Client

REPORT = 1_000


def main(uri: str, run_id: str, side: str, rate: float) -> None:
    """Log ``loss`` at steps 0, 1, 2, ... until killed (at most ~100 s)."""
    client = Client(uri)
    run = client.start_run(run_id=run_id, capture_code=False)
    fd = os.open(side, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, f"0 {time.monotonic_ns()}\n".encode())
    log_metric = run.log_metric
    start = time.monotonic()
    step = 0
    while time.monotonic() - start < 100.0:
        for _ in range(REPORT):
            log_metric("loss", float(step), step)
            step += 1
        os.write(fd, f"{step} {time.monotonic_ns()}\n".encode())
        if rate:
            ahead = step / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]) if len(sys.argv) > 4 else 0)
