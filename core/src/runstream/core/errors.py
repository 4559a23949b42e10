"""The root of every exception Runstream raises."""

from __future__ import annotations


class RunstreamError(Exception):
    """Base class of every error Runstream raises; catch this to catch them all."""


class ConfigError(RunstreamError, ValueError):
    """A setting (argument or ``RUNSTREAM_*`` variable) is missing or malformed.

    The message names the setting and the accepted form.
    """
