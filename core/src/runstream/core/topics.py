"""Topic names and configs: the one place they are spelled.

``runstream.events`` is the source of truth and is never compacted; ``runstream.runs``
holds the latest state of each run and is compacted; ``runstream.events.dlq`` receives
what cannot be decoded or validated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from runstream.core.errors import ConfigError

DEFAULT_PARTITIONS = 12
MAX_REPLICATION_FACTOR = 3
"""Replicas of every Runstream topic on a cluster of this many brokers or more."""
MIN_INSYNC_REPLICAS = 2
"""``min.insync.replicas`` of the replicated topics: an acks=all write survives one broker."""


@dataclass(frozen=True)
class Replication:
    """How Runstream's topics are replicated on a cluster of some size."""

    factor: int
    min_insync: int | None  # None: the broker's default (1)

    def config(self) -> dict[str, str]:
        """The topic config entries this replication adds."""
        if self.min_insync is None:
            return {}
        return {"min.insync.replicas": str(self.min_insync)}


def replication_for(brokers: int) -> Replication:
    """The replication of Runstream's topics on ``brokers`` brokers: factor min(3, brokers),
    and ``min.insync.replicas=2`` once there are 3 (one broker may fail and acks=all writes
    go on; on 2 brokers a min of 2 would stop all writes when one fails).

    Raises:
        ConfigError: ``brokers`` is below 1.
    """
    if brokers < 1:
        raise ConfigError(f"brokers: a cluster has at least 1, not {brokers}")
    factor = min(MAX_REPLICATION_FACTOR, brokers)
    return Replication(factor, MIN_INSYNC_REPLICAS if factor >= 3 else None)


@dataclass(frozen=True)
class Topics:
    """The topic names under one prefix (``runstream`` by default)."""

    prefix: str = "runstream"

    @property
    def events(self) -> str:
        """The event log: every batch of every run, keyed by run id."""
        return f"{self.prefix}.events"

    @property
    def runs(self) -> str:
        """The compacted current state of every run, keyed by run id."""
        return f"{self.prefix}.runs"

    @property
    def dead_letters(self) -> str:
        """Messages of the event log that could not be decoded or validated."""
        return f"{self.prefix}.events.dlq"

    @property
    def processor_group(self) -> str:
        """The stream processor's faust app id: its consumer group and the prefix of its
        changelog topics (one per topic prefix, so deployments never share state)."""
        return f"{self.prefix}-processor"

    @property
    def compactor_group(self) -> str:
        """The compactor workers' consumer group."""
        return f"{self.prefix}-compactor"

    def configs(self) -> dict[str, Mapping[str, str]]:
        """Topic name -> topic config, for creating them."""
        return {self.events: EVENTS_CONFIG, self.runs: RUNS_CONFIG, self.dead_letters: DLQ_CONFIG}


EVENTS_CONFIG: Mapping[str, str] = MappingProxyType(
    {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}
)
RUNS_CONFIG: Mapping[str, str] = MappingProxyType(
    {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1", "segment.ms": "600000"}
)
DLQ_CONFIG: Mapping[str, str] = MappingProxyType(
    {"cleanup.policy": "delete", "retention.ms": str(30 * 24 * 3600 * 1000)}
)
