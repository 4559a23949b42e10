"""The replication of Runstream's topics for a cluster's size: one place chooses it."""

from __future__ import annotations

import pytest

from runstream.core.errors import ConfigError
from runstream.core.topics import Replication, replication_for


@pytest.mark.parametrize(
    ("brokers", "factor", "min_insync"),
    [(1, 1, None), (2, 2, None), (3, 3, 2), (5, 3, 2)],
)
def test_factor_is_min_of_3_and_brokers_and_min_isr_2_from_3(
    brokers: int, factor: int, min_insync: int | None
) -> None:
    assert replication_for(brokers) == Replication(factor, min_insync)


def test_config_adds_min_insync_only_when_chosen() -> None:
    assert replication_for(1).config() == {}
    assert replication_for(3).config() == {"min.insync.replicas": "2"}


def test_no_brokers_is_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError, match="brokers"):
        replication_for(0)
