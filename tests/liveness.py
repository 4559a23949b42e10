"""Helpers of the liveness tests: a training process that starts (or resumes) a run, logs,
says ready and waits (to be SIGKILLed, or to exit normally when its stdin closes)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Mapping

LEASE = 3.0
"""The lease of these tests (RUNSTREAM_RUN_LEASE): the SDK beats every 0.75 s."""

TRAINER = textwrap.dedent(
    """
    import select
    import sys
    from runstream import tracking
    run = tracking.start_run(run_id=sys.argv[1])
    run.log_metric("loss", 0.5, step=int(sys.argv[2]))
    run.flush()
    print("ready", flush=True)
    select.select([sys.stdin], [], [], 300)  # bounded: the test closes stdin or kills us
    """
)


def liveness_env(settings_env: Mapping[str, str]) -> dict[str, str]:
    """The environment of a process of these tests: ``settings_env`` and the short lease."""
    return {**os.environ, **settings_env, "RUNSTREAM_RUN_LEASE": str(LEASE)}


def start_trainer(env: Mapping[str, str], run_id: str, step: int) -> subprocess.Popen[str]:
    """A trainer process on ``run_id``, returned once it said ready (its events flushed)."""
    process = subprocess.Popen(
        [sys.executable, "-c", TRAINER, run_id, str(step)],
        env=dict(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # the trainer flushes within seconds, or fails and exits
    if line.strip() != "ready":
        process.kill()
        _, errors = process.communicate(timeout=30)
        raise AssertionError(f"trainer did not start: {line!r} {errors}")
    return process


def finish(process: subprocess.Popen[str]) -> int:
    """Close the trainer's stdin: it returns normally (its run ends FINISHED at exit)."""
    assert process.stdin is not None
    process.stdin.close()
    return process.wait(60)


def wait_until(
    read: Callable[[], str | None], want: str, timeout: float
) -> tuple[str | None, float]:
    """Call ``read`` until it returns ``want`` or ``timeout`` seconds pass; return the last
    value and the seconds waited."""
    start = time.monotonic()
    seen = read()
    while seen != want and time.monotonic() - start < timeout:
        time.sleep(0.25)
        seen = read()
    return seen, time.monotonic() - start


ENDINGS = {
    "returns": ("", "FINISHED"),
    "raises": ("raise RuntimeError('diverged')", "FAILED"),
    "sys.exit(3)": ("sys.exit(3)", "FAILED"),
}
"""How a trainer that leaves its run open ends, and the status its run must end with."""


def run_to_the_end(env: Mapping[str, str], run_id: str, ending: str) -> int:
    """A trainer that starts ``run_id``, logs, waits past a heartbeat, then ends with
    ``ending`` and its run left open; return its exit code."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from runstream import tracking
        run = tracking.start_run(run_id={run_id!r})
        run.log_metric("loss", 0.5, step=1)
        time.sleep({LEASE / 2})
        {ending}
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=dict(env), capture_output=True, timeout=120
    )
    return done.returncode
