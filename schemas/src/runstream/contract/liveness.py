"""A run's liveness: the status readers show, from a run state, a time and a lease.

A run that is ``RUNNING``, whose producer sends heartbeats (:class:`~runstream.contract.events.
Heartbeat`), and from which nothing (but metric points) was heard for longer than the lease is
``CRASHED``: its process was killed, ran out of memory or lost its machine. It is ``RUNNING``
again as soon as an event comes with a later time (a resumed run). A run from a producer that
never sent a heartbeat (an older SDK, ``runstream emit``) is never judged.

CRASHED is never written by an event and never held by the reducer's state: it is a view, the
same pure function for the processor (what it publishes on ``runstream.runs``) and the query
layer, so both show the same status. The lease is a setting
(:attr:`runstream.core.settings.Settings.run_lease`, ``RUNSTREAM_RUN_LEASE``).
"""

from __future__ import annotations

import dataclasses

from runstream.contract.state import RUNNING, Register, RunState

CRASHED = "CRASHED"
"""The status of an open run whose heartbeats stopped for longer than the lease."""


def is_crashed(state: RunState, now_us: int, lease_us: int) -> bool:
    """True if ``state`` is RUNNING, sends heartbeats and was last heard from more than
    ``lease_us`` before ``now_us``."""
    return (
        state.heartbeats
        and state.last_heard_us is not None
        and state.status is not None
        and state.status.value == RUNNING
        and now_us - state.last_heard_us > lease_us
    )


def status(state: RunState, now_us: int, lease_us: int) -> str | None:
    """The status to show: CRASHED (see :func:`is_crashed`), else the state's own."""
    return CRASHED if is_crashed(state, now_us, lease_us) else state.status_value


def crashed_at_us(state: RunState, lease_us: int) -> int | None:
    """When the run becomes CRASHED if nothing more is heard (None: it never will as it is)."""
    if not state.heartbeats or state.last_heard_us is None or state.status_value != RUNNING:
        return None
    return state.last_heard_us + lease_us


def shown(state: RunState, now_us: int, lease_us: int) -> RunState:
    """``state`` as readers see it at ``now_us``: the same object, or, when it is CRASHED, a
    shallow copy whose status register says CRASHED (with the RUNNING register's order key).
    Never fold events into what this returns: fold into the reducer's own state."""
    if not is_crashed(state, now_us, lease_us):
        return state
    assert state.status is not None
    return dataclasses.replace(state, status=Register(CRASHED, state.status.order))


def folded(state: RunState) -> RunState:
    """The inverse of :func:`shown`: a published state with its CRASHED status read back as
    the RUNNING register it replaced (to compare it with a fold of the events)."""
    if state.status is None or state.status.value != CRASHED:
        return state
    return dataclasses.replace(state, status=Register(RUNNING, state.status.order))


def lease_us(seconds: float) -> int:
    """A lease in seconds as whole microseconds."""
    return int(seconds * 1_000_000)
