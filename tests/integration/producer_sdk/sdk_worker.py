"""One distributed worker for the integration tests: joins a shared run and logs to it.

Usage: python sdk_worker.py BOOTSTRAP TOPIC_PREFIX RUN_ID POINTS (RANK etc. from the env).
"""

from __future__ import annotations

import os
import sys

from runstream.core.settings import Settings
from runstream.tracking import Client


def main(bootstrap: str, prefix: str, run_id: str, points: int) -> None:
    """Log ``points`` metric points, one param and one log line, end the run, flush."""
    settings = Settings.resolve(f"kafka://{bootstrap}", topic_prefix=prefix, environ={})
    client = Client(settings=settings, spill_dir=None)
    rank = os.environ["RANK"]
    run = client.start_run(run_name="ddp", run_id=run_id)
    run.log_param(f"rank{rank}.seed", rank)
    for step in range(points):
        run.log_metric("loss", 1.0 / (step + 1), step)
    run.log(f"worker {rank} done", metadata={"rank": rank})
    run.end()
    client.flush(60.0)
    client.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
