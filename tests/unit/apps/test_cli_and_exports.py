"""The public surface: every CLI command imports and has help; each package's ``__all__`` is
sorted and names what it exports; every exception derives from RunstreamError."""

from __future__ import annotations

import importlib
import inspect

import click
import pytest
from click.testing import CliRunner

from runstream.apps.cli import COMMANDS, main
from runstream.core.errors import RunstreamError

PACKAGES = [
    "runstream.core",
    "runstream.contract",
    "runstream.tracking",
    "runstream.processor",
    "runstream.compactor",
    "runstream.query",
    "runstream.ui",
]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_imports_and_has_help(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_top_level_help_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_sorted_and_resolves(package: str) -> None:
    module = importlib.import_module(package)
    exported = getattr(module, "__all__", None)
    assert exported, f"{package} has no __all__"
    assert list(exported) == sorted(exported)
    for name in exported:
        assert hasattr(module, name), f"{package}.__all__ names {name}, which it lacks"


@pytest.mark.parametrize("package", PACKAGES)
def test_exceptions_derive_from_runstream_error(package: str) -> None:
    module = importlib.import_module(package)
    for name in getattr(module, "__all__", []):
        value = getattr(module, name)
        if inspect.isclass(value) and issubclass(value, Exception):
            assert issubclass(value, RunstreamError), f"{package}.{name}"


def test_a_runstream_error_is_one_line_and_exit_code_1() -> None:
    result = CliRunner().invoke(main, ["process", "--tracking-uri", "ftp://nope"])
    assert result.exit_code == 1
    assert "ConfigError" in result.output and "ftp" in result.output
    assert isinstance(main, click.Group)
