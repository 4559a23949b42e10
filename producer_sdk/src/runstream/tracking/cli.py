"""``runstream emit``: produce events given as JSON lines (see ``runstream.tracking.emit``)."""

from __future__ import annotations

from typing import TextIO

import click

from runstream.tracking.client import Client
from runstream.tracking.emit import LineEmitter
from runstream.tracking.exceptions import FlushError, ValidationError


@click.command()
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
@click.option(
    "--tracking-uri",
    envvar="RUNSTREAM_TRACKING_URI",
    default=None,
    help="kafka://host:port, file:///path or noop:// (default: RUNSTREAM_TRACKING_URI).",
)
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for acks.")
def emit(source: TextIO, tracking_uri: str | None, timeout: float) -> None:
    """Produce the events of SOURCE (JSON lines; '-' is stdin, the default).

    Each line is validated; good lines are produced, each bad line is reported with its
    number and reason, and the exit code is 1 if any line was bad or not acknowledged.
    """
    client = Client(tracking_uri)
    emitter = LineEmitter(client)
    good = bad = 0
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            emitter.emit(line)
            good += 1
        except ValidationError as error:
            bad += 1
            click.echo(f"line {number}: {error}", err=True)
    try:
        client.flush(timeout)
    except FlushError as error:
        client.close(1.0)
        raise click.ClickException(f"{good} good lines, but {error}") from error
    client.close(timeout)
    click.echo(f"{good} events produced, {bad} bad lines", err=True)
    if bad:
        raise SystemExit(1)
