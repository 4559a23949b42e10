"""``python -m tests.integration.compactor.crashing_compactor ARGS``: ``runstream compactor``
whose main thread raises :class:`InjectedCrashError` on SIGUSR1, wherever it is (polling,
listing, waiting for a write, retrying): a crash at any moment, with the command's own
clean-up (the source closed, its partitions revoked) running after it, as for any bug."""

from __future__ import annotations

import logging
import signal
import types

from runstream.compactor.cli import compactor


class InjectedCrashError(RuntimeError):
    """The crash a fault test asked for."""


def _crash(signum: int, frame: types.FrameType | None) -> None:
    raise InjectedCrashError("crash injected by the test (SIGUSR1)")


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    signal.signal(signal.SIGUSR1, _crash)
    compactor(prog_name="crashing_compactor")
