"""Runstream's topic setup on the local broker: idempotent, and a refusal that says something
about the topic (a replication factor the cluster cannot give) raised at once with the
broker's reason, not asked again until the timeout (only transient errors are)."""

from __future__ import annotations

import os
import time

import pytest
from confluent_kafka.admin import AdminClient

from runstream.core.kafka_admin import TopicError, ensure_topics
from runstream.core.settings import Settings

pytestmark = pytest.mark.integration
KAFKA = os.environ.get("RUNSTREAM_TEST_KAFKA", "127.0.0.1:9092")


def test_topics_are_created_once_and_a_refusal_is_raised_at_once(unique: str) -> None:
    settings = Settings.resolve(f"kafka://{KAFKA}", topic_prefix=unique, environ={})
    topics = ensure_topics(settings)
    ensure_topics(settings)  # again: the topics exist, nothing to do
    names = set(AdminClient(settings.kafka_config()).list_topics(timeout=10).topics)
    assert {topics.events, topics.runs, topics.dead_letters} <= names
    wide = Settings.resolve(f"kafka://{KAFKA}", topic_prefix=f"{unique}-wide", environ={})
    began = time.monotonic()
    with pytest.raises(TopicError, match=f"{unique}-wide.*[Rr]eplication"):
        ensure_topics(wide, replication_factor=3, timeout=20.0)  # the stack has one broker
    assert time.monotonic() - began < 10.0  # not asked again until the timeout
