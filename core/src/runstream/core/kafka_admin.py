"""Creating Runstream's topics (idempotent), the one place that does."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from runstream.core.errors import RunstreamError
from runstream.core.settings import Settings
from runstream.core.topics import DEFAULT_PARTITIONS, Replication, Topics, replication_for

logger = logging.getLogger(__name__)


class TopicError(RunstreamError):
    """A topic could not be created; the message names it and the broker's reason."""


def cluster_replication(settings: Settings, *, timeout: float = 30.0) -> Replication:
    """The replication Runstream's topics get on the cluster of ``settings`` (its broker count).

    Raises:
        TopicError: the cluster did not answer within ``timeout`` seconds.
    """
    admin = AdminClient(settings.kafka_config())
    return _replication(admin, timeout)


def _replication(admin: AdminClient, timeout: float) -> Replication:
    try:
        brokers = len(admin.list_topics(timeout=timeout).brokers)
    except KafkaException as error:
        raise TopicError(f"could not list the cluster's brokers: {error.args[0].str()}") from error
    return replication_for(max(1, brokers))


def ensure_topics(
    settings: Settings,
    *,
    partitions: int = DEFAULT_PARTITIONS,
    replication_factor: int | None = None,
    timeout: float = 30.0,
) -> Topics:
    """Create the events, runs and dead-letter topics of ``settings`` if they are missing.

    Without ``replication_factor`` they are replicated as :func:`replication_for` chooses for
    the cluster's broker count (factor 3 and ``min.insync.replicas=2`` on 3 brokers or more);
    topics that exist already are left as they are.

    Raises:
        TopicError: the cluster did not answer, or refused to create one (other than it
            already existing).
    """
    topics = Topics(settings.topic_prefix)
    admin = AdminClient(settings.kafka_config())
    if replication_factor is None:
        replication = _replication(admin, timeout)
    else:
        replication = Replication(replication_factor, None)
    wanted = [
        NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=replication.factor,
            config={**config, **replication.config()},
        )
        for name, config in topics.configs().items()
    ]
    _create(admin, wanted, timeout)
    return topics


_TRANSIENT = frozenset(
    {
        KafkaError._DESTROY_BROKER,  # a connection torn down while waiting (a broker restarting)
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NOT_CONTROLLER,
    }
)
"""Errors of a topic creation that say nothing about the topic: asked again."""


def _create(admin: AdminClient, wanted: list[NewTopic], timeout: float) -> None:
    """Create the ``wanted`` topics (those that exist already are left as they are), asking
    again for up to ``timeout`` seconds while the cluster answers with a transient error (a
    cluster just started, a broker going away).

    Raises:
        TopicError: the cluster refused a topic, or kept failing for ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    pending = list(wanted)
    while pending:
        retry = []
        for topic in pending:
            name = topic.topic
            try:
                admin.create_topics([topic], request_timeout=timeout)[name].result(timeout)
                logger.info("created topic %s (replication %d)", name, topic.replication_factor)
            except KafkaException as exception:
                error = exception.args[0]
                if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue
                transient = error.retriable() or error.code() in _TRANSIENT
                if not transient or time.monotonic() > deadline:
                    raise TopicError(f"could not create topic {name}: {error.str()}") from exception
                logger.debug("creating topic %s: %s; asking again", name, error.str())
                retry.append(topic)
        if retry:
            time.sleep(0.5)
        pending = retry


def ensure_topic(
    settings: Settings,
    name: str,
    *,
    partitions: int,
    config: Mapping[str, str],
    timeout: float = 30.0,
) -> None:
    """Create one more topic of Runstream's (a worker's changelog) if it is missing,
    replicated like the others on this cluster, and wait until the cluster's metadata shows
    all its partitions with a leader: a client that starts right after sees it.

    Raises:
        TopicError: the cluster did not answer, refused to create it (other than it already
            existing), or did not show it within ``timeout`` seconds.
    """
    admin = AdminClient(settings.kafka_config())
    replication = _replication(admin, timeout)
    wanted = NewTopic(
        name,
        num_partitions=partitions,
        replication_factor=replication.factor,
        config={**config, **replication.config()},
    )
    _create(admin, [wanted], timeout)
    deadline = time.monotonic() + timeout
    while True:
        topic = admin.list_topics(name, timeout=timeout).topics.get(name)
        if (
            topic is not None
            and topic.error is None
            and len(topic.partitions) == partitions
            and all(p.leader >= 0 for p in topic.partitions.values())
        ):
            return
        if time.monotonic() > deadline:
            raise TopicError(
                f"topic {name}: not shown with {partitions} partitions in {timeout:g} s"
            )
        time.sleep(0.2)
