"""``runstream compactor``: run one compactor worker until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
import types

import click

from runstream.compactor.buffer import BufferPolicy
from runstream.compactor.metrics import CompactorMetrics
from runstream.compactor.snapshots import Snapshots
from runstream.compactor.store import Store
from runstream.compactor.uploads import UploadProcesses
from runstream.compactor.worker import Compactor, CompactorConfig
from runstream.contract.codec import Codec
from runstream.core.filesystem import open_store
from runstream.core.observability import GroupLag, metrics_options, serve
from runstream.core.settings import Settings
from runstream.core.source import KafkaSource
from runstream.core.topics import Topics

logger = logging.getLogger(__name__)


@click.command("compactor")
@click.option(
    "--tracking-uri", default=None, help="kafka://host:port (default: RUNSTREAM_TRACKING_URI)."
)
@click.option(
    "--store", default=None, help="s3://bucket/prefix or a folder (default: RUNSTREAM_STORE)."
)
@click.option(
    "--s3-endpoint", default=None, help="S3-compatible endpoint (default: RUNSTREAM_S3_ENDPOINT)."
)
@click.option(
    "--topic-prefix",
    default=None,
    help="Topic prefix (default: RUNSTREAM_TOPIC_PREFIX or runstream).",
)
@click.option(
    "--group",
    default=None,
    help="Consumer group of the workers (default: <topic prefix>-compactor).",
)
@click.option(
    "--max-points",
    default=10_000,
    show_default=True,
    help="Write a run's buffer at this many points.",
)
@click.option(
    "--rotate-interval",
    default=30.0,
    show_default=True,
    help="Write a buffer whose oldest point is this old (s).",
)
@click.option(
    "--snapshots/--no-snapshots",
    default=True,
    show_default=True,
    help="Write run state snapshots under runs/.",
)
@click.option(
    "--merge/--no-merge",
    default=True,
    show_default=True,
    help="Merge an ended run's files into one.",
)
@click.option(
    "--write-threads",
    default=4,
    show_default=True,
    help="Threads writing files while the worker reads on (0: write in the loop).",
)
@click.option(
    "--upload-processes",
    default=2,
    show_default=True,
    help="Helper processes making the S3 PUTs, off the worker's interpreter lock "
    "(0: PUT from the worker's own threads). Not used for a local folder.",
)
@metrics_options
def compactor(
    tracking_uri: str | None,
    store: str | None,
    s3_endpoint: str | None,
    topic_prefix: str | None,
    group: str | None,
    max_points: int,
    rotate_interval: float,
    snapshots: bool,
    merge: bool,
    write_threads: int,
    upload_processes: int,
    metrics_port: int | None,
    metrics_host: str | None,
) -> None:
    """Write metric points into Parquet in the store, exactly once; stop with Ctrl-C."""
    settings = Settings.resolve(
        tracking_uri,
        store,
        s3_endpoint=s3_endpoint,
        topic_prefix=topic_prefix,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    )
    metrics = CompactorMetrics()
    server = serve(settings, metrics.registry, live=metrics.live, ready=metrics.ready)
    stop = threading.Event()

    def _stop(signum: int, frame: types.FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    fs, root = open_store(settings)
    local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
    uploads = (
        UploadProcesses(settings, upload_processes) if upload_processes and not local else None
    )
    destination = Store(fs, root, stop=stop, uploads=uploads)
    codec = Codec()
    topics = Topics(settings.topic_prefix)
    group = group or topics.compactor_group
    source = KafkaSource(settings, topics.events, group)
    lag = GroupLag(settings, topics.events, group, "runstream_compactor_consumer_lag")
    metrics.registry.register(lag)
    worker = Compactor(
        source,
        destination,
        codec,
        CompactorConfig(
            policy=BufferPolicy(max_points=max_points, rotate_interval_s=rotate_interval),
            merge_ended_runs=merge,
            write_threads=write_threads,
        ),
        snapshots=Snapshots(destination, codec) if snapshots else None,
        stop=stop,
        metrics=metrics,
    )
    metrics.watch(worker)
    click.echo(f"compactor: {settings.tracking_uri} -> {settings.store} (group {group})")
    try:
        stats = worker.run()
    finally:
        source.close()
        if uploads is not None:
            uploads.close()
        if server is not None:
            server.close()
        lag.close()
    click.echo(
        f"compactor stopped: {stats.records} records, {stats.points} points, "
        f"{stats.files} files, {stats.merges} merges"
    )
