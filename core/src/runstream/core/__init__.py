"""Runstream's core, under every other layer: errors, settings, the store filesystem, event
sources, topic names, Kafka delivery and admin, and the local log.

Exception tree (each package adds its own branch under ``RunstreamError``)::

    RunstreamError                       runstream.core.errors
    ├── ConfigError                      a setting is missing or malformed
    ├── SourceError, LocalLogError, TopicError, DeliveryError   core I/O
    ├── contract.ContractError           events, run state, the store's files
    ├── tracking.SdkError                SDK calls (ValidationError, FlushError, ...)
    ├── processor.ProcessorError
    ├── compactor.CompactorError
    ├── query.QueryError
    └── ui.UiError
"""

from runstream.core.errors import ConfigError, RunstreamError
from runstream.core.settings import Settings, TrackingUri

__all__ = ["ConfigError", "RunstreamError", "Settings", "TrackingUri"]
