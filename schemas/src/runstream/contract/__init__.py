"""The contract every reader and writer keeps: the Avro schemas (every version kept) and the
codec, typed events and the event-identity rule, the reducer and run state
(:mod:`~runstream.contract.state`), event validation (:mod:`~runstream.contract.validation`),
the store layout (:mod:`~runstream.contract.layout`) and the Parquet file format with its
footer rollups (:mod:`~runstream.contract.parquet`, which needs the ``arrow`` extra)."""

from runstream.contract.codec import Codec
from runstream.contract.events import (
    ArtifactLogged,
    Event,
    EventBatch,
    EventId,
    Heartbeat,
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
from runstream.contract.exceptions import (
    ContractError,
    DecodeError,
    EncodeError,
    InvalidEventError,
    StateError,
)

__all__ = [
    "ArtifactLogged",
    "Codec",
    "ContractError",
    "DecodeError",
    "EncodeError",
    "Event",
    "EventBatch",
    "EventId",
    "Heartbeat",
    "InvalidEventError",
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
    "StateError",
    "TagSet",
    "decode_batch",
    "encode_batch",
]
