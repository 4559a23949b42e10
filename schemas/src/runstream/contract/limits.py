"""The limits of what a run may hold: the one place they are written.

The SDK refuses a call that breaks one (a ``ValidationError`` naming the field and the
limit) and every reader of the event log refuses a batch that breaks one
(:func:`runstream.contract.validation.validate_batch`: the batch is dead-lettered), so a
message produced straight to the topic cannot hold what the SDK would not have sent.
"""

from __future__ import annotations

import re

MAX_KEY_LENGTH = 250
"""Characters of a metric or tag key (and of a run name or collection)."""
MAX_PARAM_KEY_LENGTH = 256
"""Characters of a param key: SAP Data Intelligence's limit on a parameter name."""
KEY_CHARACTERS = "[A-Za-z0-9_\\-./ :]"
"""The characters a key may have."""
KEY_PATTERN = re.compile(r"[A-Za-z0-9_\-./ :]+")
"""A whole key (use ``fullmatch``)."""
MAX_PARAM_LENGTH = 6000
"""Characters of a param value."""
MAX_TAG_LENGTH = 5000
"""Characters of a tag or label value (and of a log line's metadata value)."""
LOG_LEVELS = ("debug", "info", "warn", "warning", "error", "critical", "fatal")
"""The levels a log line may have (ML-Dash's debug/info/warn/error/fatal and Python's)."""
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
STEP_RANGE = (INT64_MIN, INT64_MAX)
"""Steps are any 64-bit integer, negative ones included."""
MAX_SEQUENCE = INT64_MAX
"""The greatest event sequence: a batch's last event must not pass it."""
TIMESTAMP_MS_RANGE = (631_152_000_000, 7_258_118_400_000)
"""Plausible metric timestamps in milliseconds since the epoch: 1990-01-01 to 2200-01-01.
A time in seconds falls below it, one in µs or ns above it."""
MAX_STATE_BYTES = 1_000_000
"""What a run state message (on ``runstream.runs`` and in the processor's table) stays
under for ANY run the validation accepts: Kafka's default ``message.max.bytes``. The caps
below are chosen so that a message with every field at its limit (keys of 250 characters,
producer ids of 256, values cut to ``MAX_STATE_VALUE_BYTES``) is about 970 kB; a unit test
builds that worst case (tests/unit/schemas/test_state_size.py)."""
MAX_STATE_METRIC_KEYS = 1_000
"""Metric summaries a run state message carries: those of the least keys by name. A run may
log any number of keys; past this one its state on ``runstream.runs`` (and in the
processor's table) says ``metrics_truncated`` and the store's ``metrics`` view has every
key. Keeping the least keys is a projection the reducer commutes with, so the processor's
state stays exact for the keys it keeps."""
MAX_STATE_PARAM_KEYS = 100
"""Params a run state message carries (the least keys by name); past it the state says
``params_truncated`` and the store's ``params`` table has every one."""
MAX_STATE_TAG_KEYS = 50
"""Tags, and separately labels, a run state message carries (the least keys by name); past
it the state says ``tags_truncated`` or ``labels_truncated``."""
MAX_STATE_ARTIFACTS = 20
"""Artifact paths a run state message carries (the least by name); past it the state says
``artifacts_truncated`` and the events (``runstream.query``'s artifacts) have every one."""
MAX_STATE_VALUE_BYTES = 1_000
"""Bytes of UTF-8 of one string value in a run state message (a param, tag, label or source
value, an artifact's uri, digest or media type, a deletion's reason). A longer value is cut
at a character boundary and its register says ``cut``; the store keeps it whole. Cutting is
a function of the value alone, so, like keeping the least keys, it commutes with the
reducer's last-writer-wins."""
