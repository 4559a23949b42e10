"""How the process is ending, for the runs it leaves open: FINISHED at a normal exit, FAILED
after an unhandled exception or a non-zero ``sys.exit``.

Python tells an ``atexit`` handler neither the exit code nor the exception that ended the
program, so :func:`watch` wraps ``sys.excepthook`` and ``sys.exit`` once (chaining to
whatever was there) and :func:`exit_status` reads what they saw. (A ``raise SystemExit(3)``
written out, not through ``sys.exit``, is not seen: it counts as a normal exit.)
"""

from __future__ import annotations

import sys
import threading
import types
from typing import Any, NoReturn

_lock = threading.Lock()
_watching = False
_failed = False  # an unhandled exception, or sys.exit with a non-zero code


def watch() -> None:
    """Start watching how the process ends (idempotent)."""
    global _watching
    with _lock:
        if _watching:
            return
        _watching = True
        previous_hook = sys.excepthook
        previous_exit = sys.exit

        def excepthook(
            kind: type[BaseException], error: BaseException, trace: types.TracebackType | None
        ) -> None:
            _mark_failed()
            previous_hook(kind, error, trace)

        def exiting(code: Any = None) -> NoReturn:
            if code not in (None, 0):
                _mark_failed()
            previous_exit(code)

        sys.excepthook = excepthook
        sys.exit = exiting


def exit_status() -> str:
    """The status a run left open at exit ends with: FAILED or FINISHED."""
    return "FAILED" if _failed else "FINISHED"


def _mark_failed() -> None:
    global _failed
    _failed = True
