"""Shared fixtures. Tests marked ``integration`` need the local stack (``deploy/stack up``):
Kafka on 127.0.0.1:9092 and S3 (SeaweedFS) on 127.0.0.1:8333. They fail, never skip, when a
server is missing: the first one to run checks both and fails with what to do."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import pytest

from runstream.core.settings import Settings

KAFKA = os.environ.get("RUNSTREAM_TEST_KAFKA", "127.0.0.1:9092")
S3_ENDPOINT = os.environ.get("RUNSTREAM_TEST_S3_ENDPOINT", "http://127.0.0.1:8333")
S3_BUCKET = os.environ.get("RUNSTREAM_S3_BUCKET", "runstream")

# The local stack's documented credentials (deploy/stack), unless the caller set others.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "runstream")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "runstream-secret")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def _answers(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def stack() -> None:
    """Fail loudly unless Kafka and S3 both answer."""
    missing = [
        name
        for name, address in (("Kafka", KAFKA), ("S3", S3_ENDPOINT.split("//", 1)[1]))
        if not _answers(address)
    ]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not answering ({KAFKA}, {S3_ENDPOINT}): run `deploy/stack up`",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _integration_needs_stack(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("integration") is not None:
        request.getfixturevalue("stack")


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> Iterator[str]:
    """A short unique name for this test's topics, groups and prefixes. After an integration
    test, every topic whose name starts with it is deleted: a broker holds a few thousand
    partitions before it runs out of open files, and the suite creates that many."""
    name = f"t{uuid.uuid4().hex[:12]}"
    yield name
    if request.node.get_closest_marker("integration") is not None:
        delete_topics(name)


def delete_topics(prefix: str) -> None:
    """Delete every topic of the local broker whose name starts with ``prefix``."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": KAFKA})
    names = [name for name in admin.list_topics(timeout=10).topics if name.startswith(prefix)]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            future.result(60)


@pytest.fixture
def kafka_settings(unique: str) -> Settings:
    """Settings for the local Kafka with a topic prefix of this test's own, and an S3 store
    under a prefix of this test's own."""
    return Settings.resolve(
        f"kafka://{KAFKA}",
        f"s3://{S3_BUCKET}/{unique}",
        s3_endpoint=S3_ENDPOINT,
        topic_prefix=unique,
        environ={},
    )


@pytest.fixture
def s3_settings(kafka_settings: Settings) -> Iterator[Settings]:
    """Like kafka_settings; removes the test's S3 prefix afterwards."""
    yield kafka_settings
    from runstream.core.filesystem import open_store

    fs, root = open_store(kafka_settings)
    if fs.exists(root):
        fs.rm(root, recursive=True)
