"""The stream processor: the faust app that folds the event log into run state, replay and
dead letters.

The reducer itself is the contract's (:mod:`runstream.contract.state`); the faust app is built
by :func:`runstream.processor.app.create_app` (imported on demand, so importing this package
never imports faust).
"""

from runstream.contract.deadletter import DeadLetter, read_message
from runstream.processor.exceptions import ProcessorError

__all__ = ["DeadLetter", "ProcessorError", "read_message"]
