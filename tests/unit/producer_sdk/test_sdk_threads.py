"""The SDK's background threads start without the caller waiting for them to be scheduled."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from runstream.tracking.threads import DaemonThread, reset_after_fork


def test_start_returns_before_the_thread_has_run() -> None:
    ran = threading.Event()
    release = threading.Event()
    inside: list[bool] = []

    def target() -> None:
        inside.append(thread.is_current())
        ran.set()
        release.wait(10)

    thread = DaemonThread(target, "probe")
    interval = sys.getswitchinterval()
    sys.setswitchinterval(30.0)  # the new thread gets the GIL only when this one blocks
    try:
        thread.start()
        not_yet = not ran.is_set()  # threading.Thread.start would have waited for it
    finally:
        sys.setswitchinterval(interval)
    assert not_yet
    assert thread.is_alive()
    assert ran.wait(10)
    assert inside == [True] and not thread.is_current()
    assert "probe" in {t.name for t in threading.enumerate()}
    assert not thread.join(0.05)  # still waiting for release
    release.set()
    assert thread.join(10) and not thread.is_alive()
    with pytest.raises(RuntimeError, match="started twice"):
        thread.start()


def test_a_thread_never_started_joins_at_once() -> None:
    thread = DaemonThread(lambda: None, "idle")
    assert not thread.is_alive() and thread.join(0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX only")
def test_reset_after_fork_runs_setup_in_the_child_only() -> None:
    class Owner:
        def __init__(self) -> None:
            self.resets = 0
            reset_after_fork(self)

        def _setup(self) -> None:
            self.resets += 1

    owner = Owner()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports what its copy of the owner saw
        os.write(write, str(owner.resets).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 16).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert (child, owner.resets) == ("1", 0)
