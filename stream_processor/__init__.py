"""The stream processor: run state by last value wins, the faust app, replay and dead letters.

The reducer (:mod:`stream_processor.state`) is pure Python and importable without faust;
the faust app is built by :func:`stream_processor.app.create_app` (imported on demand, so
readers of run states never import faust).
"""

from stream_processor.dlq import DeadLetter, read_message
from stream_processor.exceptions import InvalidEventError, ProcessorError, StateError
from stream_processor.state import (
    ArtifactRegister,
    DeleteRegister,
    EndRegister,
    MetricSummary,
    Register,
    RunState,
    apply,
    apply_batch,
    decode_state,
    encode_state,
    fold,
    merge,
)
from stream_processor.validation import validate_batch

__all__ = [
    "ArtifactRegister",
    "DeadLetter",
    "DeleteRegister",
    "EndRegister",
    "InvalidEventError",
    "MetricSummary",
    "ProcessorError",
    "Register",
    "RunState",
    "StateError",
    "apply",
    "apply_batch",
    "decode_state",
    "encode_state",
    "fold",
    "merge",
    "read_message",
    "validate_batch",
]
