"""The event contract: Avro schemas (every version kept), the codec, typed events, topics."""

from schemas.codec import Codec
from schemas.events import (
    ArtifactLogged,
    Event,
    EventBatch,
    EventId,
    LogicalEvent,
    LogLine,
    MetricColumns,
    MetricLogged,
    ParamLogged,
    Payload,
    Producer,
    RunDeleted,
    RunEnded,
    RunStarted,
    RunUpdated,
    TagSet,
    decode_batch,
    encode_batch,
)
from schemas.exceptions import DecodeError, EncodeError, SchemaError
from schemas.topics import Topics

__all__ = [
    "ArtifactLogged",
    "Codec",
    "DecodeError",
    "EncodeError",
    "Event",
    "EventBatch",
    "EventId",
    "LogLine",
    "LogicalEvent",
    "MetricColumns",
    "MetricLogged",
    "ParamLogged",
    "Payload",
    "Producer",
    "RunDeleted",
    "RunEnded",
    "RunStarted",
    "RunUpdated",
    "SchemaError",
    "TagSet",
    "Topics",
    "decode_batch",
    "encode_batch",
]
