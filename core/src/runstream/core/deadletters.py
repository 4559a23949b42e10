"""Where a reader sends what it refuses, when it is not the processor's Kafka producer.

The embedded mode has no dead-letter topic: its dead letters are lines of a JSON file
(``<log folder>/dead-letters.jsonl``), one per refused message, with the original key and
value (base64) and the headers the topic would carry (reason, message, source).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from runstream.core.locallog import LocalLogError

logger = logging.getLogger(__name__)

FILE_NAME = "dead-letters.jsonl"


class DeadLetterSink(Protocol):
    """Takes refused messages: their key, value and headers."""

    def send(
        self, key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        """Keep one refused message."""
        ...


class DeadLetterFile:
    """Appends dead letters to a JSON-lines file (created on the first one)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(
        self, key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        """Append one dead letter and flush it.

        Raises:
            LocalLogError: the file cannot be written.
        """
        line = {
            "key": None if key is None else base64.b64encode(key).decode(),
            "value": None if value is None else base64.b64encode(value).decode(),
            "headers": {name: data.decode("utf-8", "replace") for name, data in headers},
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as file:
                file.write(json.dumps(line) + "\n")
        except OSError as error:
            raise LocalLogError(
                f"cannot append to dead-letter file {self.path}: {error}"
            ) from error


def read_dead_letters(path: Path) -> Iterator[dict[str, Any]]:
    """Every dead letter of a file written by :class:`DeadLetterFile` (none if it is
    missing): ``key`` and ``value`` as bytes, ``headers`` as a dict of strings."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as file:
        for line in file:
            item = json.loads(line)
            for name in ("key", "value"):
                if item[name] is not None:
                    item[name] = base64.b64decode(item[name])
            yield item
