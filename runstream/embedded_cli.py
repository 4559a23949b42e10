"""``runstream process`` and ``runstream sync``: the embedded mode's commands."""

from __future__ import annotations

import click

from runstream.settings import Settings


@click.command("process")
@click.option(
    "--tracking-uri", default=None, help="file:///folder (default: RUNSTREAM_TRACKING_URI)."
)
@click.option("--store", default=None, help="Where Parquet goes (default: <folder>/store).")
def process(tracking_uri: str | None, store: str | None) -> None:
    """Fold the local log's new events into run state and Parquet (incremental)."""
    from runstream.embedded import process as run_process

    settings = Settings.resolve(tracking_uri, store)
    result = run_process(settings)
    click.echo(
        f"processed {result.records} batches: {result.points} metric points into "
        f"{result.files} files ({result.merges} merged) under {settings.store}"
    )
