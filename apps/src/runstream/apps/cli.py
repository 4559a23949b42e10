"""The ``runstream`` command: one click group; each package contributes its subcommands.

Subcommands are imported when first used, so ``runstream --help`` stays fast and a command
never pays for another package's imports. A package adds a command by naming it in
``COMMANDS`` as ``"module:attribute"``.
"""

from __future__ import annotations

import importlib
import logging

import click

from runstream.core.errors import RunstreamError

COMMANDS: dict[str, str] = {
    "artifacts": "runstream.query.cli:artifacts",
    "check": "runstream.apps.check:check",
    "compactor": "runstream.compactor.cli:compactor",
    "compare": "runstream.query.cli:compare",
    "demo": "runstream.apps.demo:demo",
    "emit": "runstream.tracking.cli:emit",
    "history": "runstream.query.cli:history",
    "process": "runstream.apps.embedded_cli:process",
    "processor": "runstream.processor.cli:processor",
    "replay": "runstream.processor.cli:replay_command",
    "runs": "runstream.query.cli:runs",
    "sql": "runstream.query.cli:sql",
    "sync": "runstream.apps.embedded_cli:sync",
    "ui": "runstream.ui.cli:ui",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """All subcommand names, sorted."""
        return sorted({*COMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import and return the subcommand ``cmd_name``, or None if there is none."""
        target = COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> object:
        """Run the subcommand; a RunstreamError becomes a one-line message and exit code 1."""
        try:
            return super().invoke(ctx)
        except RunstreamError as error:
            raise click.ClickException(f"{type(error).__name__}: {error}") from error


@click.group(cls=LazyGroup)
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Runstream: an event-sourced experiment tracker over Kafka."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


if __name__ == "__main__":
    main()
