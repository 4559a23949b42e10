"""``runstream process`` and ``runstream sync``: the embedded mode's commands."""

from __future__ import annotations

import click

from runstream.core.settings import Settings


@click.command("process")
@click.option(
    "--tracking-uri", default=None, help="file:///folder (default: RUNSTREAM_TRACKING_URI)."
)
@click.option("--store", default=None, help="Where Parquet goes (default: <folder>/store).")
def process(tracking_uri: str | None, store: str | None) -> None:
    """Fold the local log's new events into run state and Parquet (incremental)."""
    from runstream.apps.embedded import process as run_process

    settings = Settings.resolve(tracking_uri, store)
    result = run_process(settings)
    click.echo(
        f"processed {result.records} batches: {result.points} metric points into "
        f"{result.files} files ({result.merges} merged) under {settings.store}"
    )
    if result.dead_letters:
        from runstream.apps.embedded import dead_letter_path

        click.echo(
            f"refused {result.dead_letters} batches (reasons in {dead_letter_path(settings)})",
            err=True,
        )


@click.command("sync")
@click.option(
    "--from", "source", default=None, help="file:///folder (default: RUNSTREAM_TRACKING_URI)."
)
@click.option("--to", "target", required=True, help="kafka://host:port of the events topic.")
@click.option(
    "--topic-prefix", default=None, help="Topic prefix at the target (default: runstream)."
)
@click.option(
    "--all", "resend_all", is_flag=True, help="Send every event again, not only the new ones."
)
@click.option(
    "--journal",
    is_flag=True,
    help="Instead, resend the SDK journal files (RUNSTREAM_SPILL_DIR) of this broker and "
    "topic that no live process holds: batches of ended processes Kafka may not have "
    "acknowledged.",
)
def sync(
    source: str | None, target: str, topic_prefix: str | None, resend_all: bool, journal: bool
) -> None:
    """Send a local (offline) log to Kafka, or the SDK's journal; safe to run twice."""
    if journal:
        from runstream.tracking import resend_spill_files

        settings = Settings.resolve(target, topic_prefix=topic_prefix)
        events = resend_spill_files(settings, settings.spill_dir)
        click.echo(f"resent {events} events from the journal {settings.spill_dir} to {target}")
        return
    from runstream.apps.sync import sync as run_sync

    sent = run_sync(
        Settings.resolve(source),
        Settings.resolve(target, topic_prefix=topic_prefix),
        resend_all=resend_all,
    )
    click.echo(f"sent {sent} batches to {target}")
