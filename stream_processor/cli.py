"""The ``runstream processor`` and ``runstream replay`` commands."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from runstream.settings import Settings


@click.command("processor")
@click.option(
    "--app-id",
    default="runstream-processor",
    show_default=True,
    help="Faust app id (the consumer group).",
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
@click.option("--loglevel", default="WARNING", show_default=True)
def processor(app_id: str, data_dir: Path, chunk: int, within: float, loglevel: str) -> None:
    """Run a stream-processor worker (start several with the same --app-id to share the load)."""
    from faust import Worker

    from runstream.kafka_admin import ensure_topics
    from stream_processor.app import ProcessorOptions, create_app

    settings = Settings.resolve()
    ensure_topics(settings)
    app = create_app(
        settings, ProcessorOptions(app_id=app_id, datadir=data_dir, chunk=chunk, within=within)
    )
    worker = Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


def main() -> None:
    """Entry point of ``python -m stream_processor <command>``."""
    group = click.Group(commands={"processor": processor})
    group.main(sys.argv[1:], prog_name="stream_processor")
