"""Replay: fold the event log with the reducer, then verify the live run states or rebuild them.

The event log is the source of truth, so the states on ``runstream.runs`` can always be
recomputed: :func:`replay` reads the events topic (from the beginning, or from given
offsets), decodes and validates every message exactly as the processor does (refused
messages are counted, not re-sent) and folds the batches. :func:`verify` compares the
result with the runs topic; :func:`rebuild` writes it to a fresh compacted topic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from runstream.contract import liveness
from runstream.contract.codec import Codec
from runstream.contract.deadletter import DeadLetter, read_message
from runstream.contract.exceptions import DecodeError
from runstream.contract.state import RunState, apply_batch, decode_state, encode_state
from runstream.core.settings import Settings
from runstream.core.source import read_topic
from runstream.core.topics import DEFAULT_PARTITIONS, RUNS_CONFIG, Topics
from runstream.processor.exceptions import ProcessorError

logger = logging.getLogger(__name__)

Progress = Callable[[int], None]
_PROGRESS_EVERY = 1000


@dataclass
class ReplayResult:
    """What a replay read and folded."""

    states: dict[str, RunState] = field(default_factory=dict)
    partitions: dict[str, int] = field(default_factory=dict)
    messages: int = 0
    events: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)


@dataclass(frozen=True)
class Difference:
    """One run whose live state differs from the replayed one.

    ``kind`` is ``missing`` (replayed, not live), ``extra`` (live, not replayed or deleted),
    ``differs`` (both, not equal; ``detail`` names the fields) or ``undecodable``.
    """

    run_id: str
    kind: str
    detail: str = ""


def backlog(settings: Settings, topic: str, start: Mapping[int, int] | None = None) -> int:
    """How many records :func:`replay` will read from ``topic`` (for a progress bar).

    Raises:
        ProcessorError: the topic does not exist or the broker does not answer.
    """
    consumer = _consumer(settings)
    try:
        total = 0
        for partition in _partitions(consumer, topic):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10.0)
            total += max(0, high - max(low, (start or {}).get(partition, low)))
        return total
    except KafkaException as error:
        raise ProcessorError(f"cannot read the offsets of {topic}: {error}") from error
    finally:
        consumer.close()


def offsets_for_time(settings: Settings, topic: str, time_ms: int) -> dict[int, int]:
    """Per partition, the first offset whose timestamp is at or after ``time_ms`` (partitions
    with no such record start at their end).

    Raises:
        ProcessorError: the topic does not exist or the broker does not answer.
    """
    consumer = _consumer(settings)
    try:
        wanted = [TopicPartition(topic, p, time_ms) for p in _partitions(consumer, topic)]
        found = consumer.offsets_for_times(wanted, timeout=10.0)
        offsets: dict[int, int] = {}
        for tp in found:
            if tp.offset < 0:
                tp.offset = consumer.get_watermark_offsets(
                    TopicPartition(topic, tp.partition), 10.0
                )[1]
            offsets[tp.partition] = tp.offset
        return offsets
    except KafkaException as error:
        raise ProcessorError(f"cannot find offsets of {topic} at {time_ms} ms: {error}") from error
    finally:
        consumer.close()


def replay(
    settings: Settings,
    *,
    start: Mapping[int, int] | None = None,
    on_progress: Progress | None = None,
) -> ReplayResult:
    """Fold the events topic of ``settings`` from ``start`` (default: the beginning) to its
    current end. ``on_progress`` is called with the number of messages read since its last
    call.

    Raises:
        SourceError: the topic does not exist or cannot be read.
    """
    codec = Codec()
    topic = Topics(settings.topic_prefix).events
    result = ReplayResult()
    states = result.states
    pending = 0
    for record in read_topic(settings, topic, start=start):
        read = read_message(codec, topic, record.partition, record.offset, record.key, record.value)
        if isinstance(read, DeadLetter):
            result.dead_letters.append(read)
        else:
            states[read.run_id] = apply_batch(states.get(read.run_id), read)
            result.partitions[read.run_id] = record.partition
            result.events += len(read)
        pending += 1
        if pending == _PROGRESS_EVERY:
            result.messages += pending
            if on_progress is not None:
                on_progress(pending)
            pending = 0
    result.messages += pending
    if on_progress is not None and pending:
        on_progress(pending)
    return result


def live_states(settings: Settings, topic: str | None = None) -> dict[str, bytes | None]:
    """The runs topic (default: the one of ``settings``) as a reader sees it: the last value
    of each run id, None for a tombstone.

    Raises:
        SourceError: the topic does not exist or cannot be read.
    """
    latest: dict[str, bytes | None] = {}
    for record in read_topic(settings, topic or Topics(settings.topic_prefix).runs):
        if record.key is not None:
            latest[record.key.decode("utf-8", "replace")] = record.value
    return latest


def verify(replayed: Mapping[str, RunState], live: Mapping[str, bytes | None]) -> list[Difference]:
    """Every run whose live state (from :func:`live_states`) is not the replayed one; a
    deleted run must be absent or a tombstone. Empty when they agree."""
    codec = Codec()
    differences: list[Difference] = []
    for run_id in sorted(set(replayed) | set(live)):
        expected = replayed.get(run_id)
        data = live.get(run_id)
        if expected is None or expected.is_deleted:
            if data is not None:
                differences.append(Difference(run_id, "extra", "live but not in the replay"))
            continue
        if data is None:
            differences.append(Difference(run_id, "missing", "replayed but not live"))
            continue
        try:
            actual = liveness.folded(decode_state(codec, data))  # CRASHED is a view
        except DecodeError as error:
            differences.append(Difference(run_id, "undecodable", str(error)))
            continue
        # compared as published: a state message carries the least keys of each map and
        # cut values (run_state v4, runstream.contract.limits)
        published = decode_state(codec, encode_state(codec, expected))
        if actual != published:
            differences.append(Difference(run_id, "differs", ", ".join(_fields(actual, published))))
    return differences


def rebuild(settings: Settings, result: ReplayResult, topic: str) -> int:
    """Write every live state of a replay to ``topic``, a fresh compacted topic created
    here, each in the partition number of its run's events (as the processor does); return
    how many were written.

    Raises:
        ProcessorError: ``topic`` already exists, or the writes were not all acknowledged.
    """
    admin = AdminClient(settings.kafka_config())
    created = admin.create_topics(
        [NewTopic(topic, DEFAULT_PARTITIONS, 1, config=dict(RUNS_CONFIG))]
    )[topic]
    try:
        created.result(30)
    except KafkaException as error:
        if error.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
            raise ProcessorError(
                f"topic {topic} already exists: rebuild writes to a fresh topic only"
            ) from error
        raise ProcessorError(f"could not create {topic}: {error.args[0].str()}") from error
    codec = Codec()
    producer = Producer(settings.kafka_config(**{"enable.idempotence": True, "linger.ms": 50}))
    written = 0
    for run_id, state in result.states.items():
        if state.is_deleted:
            continue
        producer.produce(
            topic, encode_state(codec, state), run_id.encode(), result.partitions[run_id]
        )
        producer.poll(0)
        written += 1
    unsent = producer.flush(60)
    if unsent:
        raise ProcessorError(f"{unsent} of {written} run states to {topic} were not acknowledged")
    return written


def _fields(actual: RunState, expected: RunState) -> list[str]:
    return [
        name
        for name in RunState.__dataclass_fields__
        if getattr(actual, name) != getattr(expected, name)
    ]


def _consumer(settings: Settings) -> Consumer:
    return Consumer(
        settings.kafka_config(**{"group.id": "runstream-replay", "enable.auto.commit": False})
    )


def _partitions(consumer: Consumer, topic: str) -> list[int]:
    metadata = consumer.list_topics(topic, timeout=10.0).topics.get(topic)
    if metadata is None or metadata.error is not None:
        raise ProcessorError(f"topic {topic} does not exist or cannot be read")
    return sorted(metadata.partitions)
