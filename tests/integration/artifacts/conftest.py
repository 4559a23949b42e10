"""Fixtures of the artifact integration tests: settings on the local stack, and a private
SeaweedFS (``weed mini`` on free ports, never the shared one) to stop during an upload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runstream.core.kafka_admin import ensure_topics
from runstream.core.settings import Settings

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def stack_settings(s3_settings: Settings) -> Settings:
    """Kafka + the shared S3 under this test's own prefix, with its topics created."""
    ensure_topics(s3_settings)
    return s3_settings


@pytest.fixture
def private_settings(private_s3: Any, kafka_settings: Settings, unique: str) -> Settings:
    """Kafka (this test's topic prefix, topics created) + the private S3."""
    settings = Settings.resolve(
        str(kafka_settings.tracking_uri),
        f"s3://runstream/{unique}",
        s3_endpoint=private_s3.endpoint,
        topic_prefix=unique,
        environ={},
    )
    ensure_topics(settings)
    return settings
