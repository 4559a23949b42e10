"""Creating Runstream's topics (idempotent), the one place that does."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from runstream.core.errors import RunstreamError
from runstream.core.settings import Settings
from runstream.core.topics import DEFAULT_PARTITIONS, Topics

logger = logging.getLogger(__name__)


class TopicError(RunstreamError):
    """A topic could not be created; the message names it and the broker's reason."""


def ensure_topics(
    settings: Settings,
    *,
    partitions: int = DEFAULT_PARTITIONS,
    replication_factor: int = 1,
    timeout: float = 30.0,
) -> Topics:
    """Create the events, runs and dead-letter topics of ``settings`` if they are missing.

    Raises:
        TopicError: the broker refused to create one (other than it already existing).
    """
    topics = Topics(settings.topic_prefix)
    admin = AdminClient(settings.kafka_config())
    wanted = [
        NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=replication_factor,
            config=dict(config),
        )
        for name, config in topics.configs().items()
    ]
    for name, future in admin.create_topics(wanted, request_timeout=timeout).items():
        try:
            future.result(timeout)
            logger.info("created topic %s", name)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise TopicError(f"could not create topic {name}: {error.args[0].str()}") from error
    return topics
