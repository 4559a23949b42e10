"""The ``runstream processor`` and ``runstream replay`` commands."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from runstream.core.observability import metrics_options
from runstream.core.settings import Settings


@click.command("processor")
@click.option(
    "--app-id",
    default=None,
    help="Faust app id: the consumer group (default: <topic prefix>-processor).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runstream-processor-data"),
    show_default=True,
    help="Folder of this worker's RocksDB table files.",
)
@click.option("--chunk", default=2000, show_default=True, help="Messages folded at once.")
@click.option(
    "--within", default=0.2, show_default=True, help="Seconds to wait for a chunk to fill."
)
@click.option(
    "--session-timeout",
    default=30.0,
    show_default=True,
    help="Seconds after which a silent (killed) worker's partitions go to the others.",
)
@click.option("--loglevel", default="WARNING", show_default=True)
@metrics_options
def processor(
    app_id: str | None,
    data_dir: Path,
    chunk: int,
    within: float,
    session_timeout: float,
    loglevel: str,
    metrics_port: int | None,
    metrics_host: str | None,
) -> None:
    """Run a stream-processor worker (start several with the same --app-id to share the load)."""
    from faust import Worker

    from runstream.core.kafka_admin import cluster_replication, ensure_topic, ensure_topics
    from runstream.core.observability import serve
    from runstream.processor.app import TABLE, ProcessorOptions, create_app
    from runstream.processor.metrics import ProcessorMetrics

    settings = Settings.resolve(metrics_port=metrics_port, metrics_host=metrics_host)
    ensure_topics(settings)
    metrics = ProcessorMetrics()
    serve(settings, metrics.registry, live=metrics.live, ready=metrics.ready)
    app = create_app(
        settings,
        ProcessorOptions(
            app_id=app_id,
            datadir=data_dir,
            chunk=chunk,
            within=within,
            session_timeout=session_timeout,
            replication_factor=cluster_replication(settings).factor,
        ),
        metrics,
    )
    # The table's changelog exists, and the cluster shows it, before faust starts: when it
    # was left to faust, of two workers starting together on a 3-broker cluster one could
    # see the changelog with 0 partitions in its metadata and die on its first chunk.
    changelog = app.tables[TABLE].changelog_topic
    ensure_topic(
        settings,
        changelog.get_topic_name(),
        partitions=app.conf.topic_partitions,
        config={"cleanup.policy": "compact"},
    )
    worker = Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    # faust's start-up spinner sets the root logger to DEBUG (to spin on every record) when
    # the level is WARNING or above: every debug call of faust and aiokafka (one per message
    # sent) then built a record. Without it the root logger keeps the level asked for.
    worker.spinner = None
    worker.execute_from_commandline()


@click.command("replay")
@click.option(
    "--from-offset",
    "from_offsets",
    multiple=True,
    metavar="PARTITION:OFFSET",
    help="Start this partition at this offset (repeatable; others start at the beginning).",
)
@click.option(
    "--from-time",
    metavar="TIME",
    help="Start every partition at this time (ISO 8601, or ms since the epoch).",
)
@click.option("--verify", "verify_live", is_flag=True, help="Compare with the live runs topic.")
@click.option("--rebuild", metavar="TOPIC", help="Write the replayed states into this new topic.")
def replay_command(
    from_offsets: tuple[str, ...], from_time: str | None, verify_live: bool, rebuild: str | None
) -> None:
    """Fold the event log with the reducer; --verify the runs topic against it (exit 1 on any
    difference) or --rebuild the states into a fresh topic."""
    from rich.progress import Progress

    from runstream.core.topics import Topics
    from runstream.processor import replay as replaying

    if verify_live and rebuild:
        raise click.UsageError("--verify and --rebuild are exclusive")
    settings = Settings.resolve()
    topic = Topics(settings.topic_prefix).events
    start = _start(settings, topic, from_offsets, from_time)
    if start is not None and verify_live:
        click.echo(
            "warning: --verify after a partial replay reports runs with older events", err=True
        )
    with Progress(transient=True) as progress:
        task = progress.add_task("replaying", total=replaying.backlog(settings, topic, start))
        result = replaying.replay(
            settings, start=start, on_progress=lambda n: progress.advance(task, n)
        )
    click.echo(
        f"replayed {result.messages} messages, {result.events} events, {len(result.states)} runs, "
        f"{len(result.dead_letters)} refused"
    )
    if verify_live:
        differences = replaying.verify(result.states, replaying.live_states(settings))
        for difference in differences:
            click.echo(f"{difference.kind} {difference.run_id} {difference.detail}")
        if differences:
            raise click.ClickException(f"{len(differences)} runs differ from the replay")
        click.echo("the runs topic equals the replay")
    if rebuild:
        written = replaying.rebuild(settings, result, rebuild)
        click.echo(f"wrote {written} run states to {rebuild}")


def _start(
    settings: Settings, topic: str, from_offsets: tuple[str, ...], from_time: str | None
) -> dict[int, int] | None:
    from runstream.processor.replay import offsets_for_time

    if from_offsets and from_time:
        raise click.UsageError("--from-offset and --from-time are exclusive")
    if from_time:
        return offsets_for_time(settings, topic, _time_ms(from_time))
    if not from_offsets:
        return None
    start = {}
    for item in from_offsets:
        partition, _, offset = item.partition(":")
        if not (partition.isdigit() and offset.isdigit()):
            raise click.BadParameter(
                f"{item!r} is not PARTITION:OFFSET", param_hint="--from-offset"
            )
        start[int(partition)] = int(offset)
    return start


def _time_ms(text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise click.BadParameter(
            f"{text!r} is not ISO 8601 or ms", param_hint="--from-time"
        ) from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def main() -> None:
    """Entry point of ``python -m runstream.processor <command>``."""
    group = click.Group(commands={"processor": processor, "replay": replay_command})
    group.main(sys.argv[1:], prog_name="python -m runstream.processor")
