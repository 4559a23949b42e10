"""The background write queue: order per run, offsets held until written, errors kept."""

from __future__ import annotations

import threading

import pytest

from runstream.compactor.writes import WriteQueue


def test_tasks_of_one_key_run_in_order_and_hold_their_offsets_until_done() -> None:
    queue = WriteQueue(threads=4, max_in_flight=16)
    gate = threading.Event()
    done: list[int] = []

    def task(n: int) -> None:
        if n == 0:
            gate.wait()
        done.append(n)

    for n in range(5):
        queue.submit((1, "r"), 10 + n, lambda n=n: task(n))  # type: ignore[misc]
    queue.submit((2, "other"), 3, lambda: None)
    assert queue.holds()[1] == 10  # the first task of partition 1 is blocked
    gate.set()
    queue.join()
    assert done == [0, 1, 2, 3, 4]
    assert queue.holds() == {} and queue.in_flight == 0
    queue.close()


def test_a_failed_task_keeps_its_hold_and_its_successors_never_run() -> None:
    queue = WriteQueue(threads=2, max_in_flight=8)
    ran: list[str] = []

    def fail() -> None:
        raise OSError("store down")

    queue.submit((0, "r"), 5, fail)
    queue.submit((0, "r"), 9, lambda: ran.append("after"))
    queue.submit((0, "s"), 7, lambda: ran.append("other run"))
    queue.wait_for(lambda key: True)
    with pytest.raises(OSError, match="store down"):
        queue.reap()
    assert ran == ["other run"]
    assert queue.holds() == {0: 5}
    assert queue.busy((0, "r")) and not queue.busy((1, "r"))
    with pytest.raises(OSError):
        queue.join()


def test_unordered_tasks_of_one_key_overlap_and_an_ordered_one_waits_for_them_all() -> None:
    queue = WriteQueue(threads=4, max_in_flight=16)
    both_running = threading.Barrier(2, timeout=10)  # broken unless two parts run at once
    events: list[str] = []

    def part(n: int) -> None:
        both_running.wait()
        events.append(f"part {n}")

    queue.submit((0, "r"), 10, lambda: part(1), ordered=False)
    queue.submit((0, "r"), 20, lambda: part(2), ordered=False)
    queue.submit((0, "r"), 10, lambda: events.append("merge"))  # ordered
    queue.submit((0, "r"), 30, lambda: events.append("part 3"), ordered=False)  # after the merge
    queue.submit((0, "r"), 30, lambda: events.append("last"))
    queue.join()
    assert sorted(events[:2]) == ["part 1", "part 2"] and events[2:] == ["merge", "part 3", "last"]
    queue.close()


def test_an_ordered_task_after_a_failed_unordered_one_never_runs() -> None:
    queue = WriteQueue(threads=2, max_in_flight=8)
    ran: list[str] = []

    def fail() -> None:
        raise OSError("store down")

    queue.submit((0, "r"), 5, fail, ordered=False)
    queue.submit((0, "r"), 9, lambda: ran.append("other part"), ordered=False)
    queue.submit((0, "r"), 5, lambda: ran.append("merge"))
    queue.wait_for(lambda key: True)
    with pytest.raises(OSError, match="store down"):
        queue.reap()
    assert ran == ["other part"]  # a part of its own; the merge would have missed a file
    assert queue.holds() == {0: 5}


def test_without_threads_tasks_run_in_the_callers_thread() -> None:
    queue = WriteQueue(threads=0, max_in_flight=1)
    seen: list[str] = []
    queue.submit((0, "r"), 1, lambda: seen.append(threading.current_thread().name))
    assert seen == [threading.current_thread().name]
    assert queue.in_flight == 0 and queue.holds() == {}
    with pytest.raises(ValueError, match="bad"):
        queue.submit((0, "r"), 2, lambda: (_ for _ in ()).throw(ValueError("bad")))
