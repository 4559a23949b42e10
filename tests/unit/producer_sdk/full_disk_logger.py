"""Logs points with the file-size limit (RLIMIT_FSIZE) set low, so writes past it fail with
EFBIG, the kernel's refusal of a real write (a full disk without root); prints what the SDK
reported as JSON.

Usage: python full_disk_logger.py TRACKING_URI SPILL_DIR LIMIT_BYTES POINTS
"""

from __future__ import annotations

import json
import resource
import signal
import sys
from pathlib import Path

from runstream.core.settings import Settings
from runstream.tracking import Client
from runstream.tracking.exceptions import SinkError


def main(uri: str, spill: str, limit: int, points: int) -> None:
    """Log up to ``points`` points (until a call raises), flush, close; print the errors,
    the points accepted and close's count."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails: EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    settings = Settings.resolve(
        uri,
        kafka={"message.timeout.ms": 300, "socket.connection.setup.timeout.ms": 1000},
        environ={},
    )
    client = Client(settings=settings, spill_dir=Path(spill))
    run = client.start_run(run_id="full", capture_code=False)
    accepted, call_error = 0, ""
    for step in range(points):
        accepted += 1  # a call that raises has still queued its point
        try:
            run.log_metric("loss", step * 0.5, step=step)
        except SinkError as caught:  # the next call after a failed write
            call_error = str(caught)
            break
    error = ""
    try:
        client.flush(3.0)
    except SinkError as caught:
        error = str(caught)
    report = {"accepted": accepted, "call_error": call_error, "error": error}
    print(json.dumps({**report, "closed": client.close(0.5)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
