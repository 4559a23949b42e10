"""Runstream's shared core: the root error, settings resolution and the CLI group.

Exception tree (each package adds its own branch under ``RunstreamError``)::

    RunstreamError
    ├── ConfigError                     runstream.errors
    ├── schemas.SchemaError             encode/decode of the event contract
    ├── producer_sdk.TrackingError      SDK calls (ValidationError, FlushError, ...)
    ├── stream_processor.ProcessorError
    ├── compactor.CompactorError
    └── query.QueryError
"""

from runstream.errors import ConfigError, RunstreamError
from runstream.settings import Settings, TrackingUri

__all__ = ["ConfigError", "RunstreamError", "Settings", "TrackingUri"]
__version__ = "0.1.0"
