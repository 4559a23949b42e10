"""The processor's Prometheus metrics, its health checks, and the faust hooks that feed them.

Metrics (all ``runstream_processor_*``)::

    messages_total            event-log messages read (dead letters included)
    events_total              events folded, metric points included (a batch's len())
    points_total              metric points folded
    dead_letters_total{reason}  messages sent to the dead-letter topic
    runs_published_total      run states published to the runs topic
    fold_seconds              time to fold one chunk and publish its states (histogram)
    assigned_partitions       event-log partitions this worker holds
    consumer_lag{partition}   the group's lag on the event log (high watermark - committed)
"""

from __future__ import annotations

import time
from typing import Any

import faust
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from runstream.core.observability import GroupLag
from runstream.core.settings import Settings

PREFIX = "runstream_processor"
# The event loop must answer within this; a loop stuck longer is a worker to restart.
STALL_SECONDS = 60.0
_TICK_SECONDS = 5.0


class ProcessorMetrics:
    """The metrics of one processor worker, in a registry of their own.

    Args:
        registry: where they are registered (None: a new one).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.messages = Counter(
            f"{PREFIX}_messages", "Event-log messages read", registry=self.registry
        )
        self.events = Counter(
            f"{PREFIX}_events", "Events folded, metric points included", registry=self.registry
        )
        self.points = Counter(f"{PREFIX}_points", "Metric points folded", registry=self.registry)
        self.dead_letters = Counter(
            f"{PREFIX}_dead_letters",
            "Messages sent to the dead-letter topic, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.runs_published = Counter(
            f"{PREFIX}_runs_published",
            "Run states published to the runs topic",
            registry=self.registry,
        )
        self.fold_seconds = Histogram(
            f"{PREFIX}_fold_seconds",
            "Seconds to fold one chunk and publish its run states",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.assigned_partitions = Gauge(
            f"{PREFIX}_assigned_partitions",
            "Event-log partitions this worker holds",
            registry=self.registry,
        )
        self._assigned = 0
        self._ticked: float | None = None  # the timer runs once the app has started

    def attach(self, app: faust.App, settings: Settings, topic: str, group: str) -> None:
        """Follow ``app``'s assignment of ``topic`` (the event log), its event loop (a timer
        every few seconds) and the lag of its consumer ``group`` on ``topic``."""
        self.registry.register(GroupLag(settings, topic, group, f"{PREFIX}_consumer_lag"))

        async def assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            # faust sends the set of every TopicPartition now assigned, positionally
            self._assigned = sum(1 for tp in (args[0] if args else ()) if tp.topic == topic)
            self.assigned_partitions.set(self._assigned)

        app.on_partitions_assigned.connect(assigned)

        async def tick() -> None:
            self._ticked = time.monotonic()

        app.timer(_TICK_SECONDS, name=f"{PREFIX}.tick")(tick)

    def live(self) -> str | None:
        """None while the event loop ticks (or before it first has: table recovery may take
        long); else why the worker should be restarted."""
        if self._ticked is None:
            return None
        silent = time.monotonic() - self._ticked
        if silent > STALL_SECONDS:
            return f"event loop silent for {silent:.0f} s"
        return None

    def ready(self) -> str | None:
        """None once the worker holds partitions; else why it is not ready."""
        problem = self.live()
        if problem is not None:
            return problem
        if self._assigned == 0:
            return "no partition assigned yet"
        return None
