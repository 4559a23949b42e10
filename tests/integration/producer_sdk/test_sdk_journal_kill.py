"""Nothing accepted is lost when the training process is killed (issue 16): a trainer
logging at full speed is SIGKILLed at a random moment, 5 times, on kafka:// and file://.

What was accepted comes from the trainer's side file (``<accepted> <monotonic ns>`` every
1,000 points, unbuffered); what survived is read back with fastavro from the journal / local
log files (blocks up to a torn tail) and from the topic. Checked each time:

- the points that survived (acknowledged by Kafka, or in the journal) are steps 0..n-1 with
  no hole, and n >= the points accepted 50 ms before the kill: only what was accepted in the
  last 50 ms may be missing;
- kafka://: after the next client of the same journal folder has resent the journal files
  the dead process left, the topic holds every one of those n points (0 lost), and the
  journal folder is empty.

Then the broker (a PRIVATE one, never the shared broker) is stopped for 20 s while the
trainer logs, the trainer is SIGKILLed, the broker comes back and the next client resends:
0 points lost.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastavro import block_reader

from runstream.contract import Codec, decode_batch
from runstream.core.kafka_admin import ensure_topics
from runstream.core.settings import Settings
from runstream.core.source import read_topic
from runstream.core.topics import Topics
from runstream.tracking import Client

from .conftest import PrivateKafka

logger = logging.getLogger(__name__)

TRAINER = Path(__file__).with_name("journal_trainer.py")
KILLS = 5
WINDOW_NS = 50_000_000
REPORT = 1_000  # the trainer's side-file period, in points
START_SECONDS = 60.0


def launch(
    uri: str, run_id: str, side: Path, spill: Path, prefix: str, rate: int = 0
) -> subprocess.Popen[bytes]:
    """Start the trainer; it logs until killed."""
    env = {
        **os.environ,
        "RUNSTREAM_SPILL_DIR": str(spill),
        "RUNSTREAM_TOPIC_PREFIX": prefix,
        "RUNSTREAM_JOURNAL": "1",
    }
    command = [sys.executable, str(TRAINER), uri, run_id, str(side), str(rate)]
    return subprocess.Popen(command, env=env)


def reports(side: Path) -> list[tuple[int, int]]:
    """(points accepted, monotonic ns) pairs the trainer wrote, whole lines only."""
    lines = side.read_bytes().decode().split("\n")[:-1] if side.exists() else []
    return [(int(count), int(at)) for count, at in (line.split() for line in lines)]


def wait_logging(process: subprocess.Popen[bytes], side: Path) -> None:
    """Return once the trainer has had its first points accepted."""
    deadline = time.monotonic() + START_SECONDS
    while not any(count >= REPORT for count, _ in reports(side)):
        assert process.poll() is None, "the trainer ended before logging"
        assert time.monotonic() < deadline, "the trainer did not start logging"
        time.sleep(0.05)


def kill(process: subprocess.Popen[bytes]) -> int:
    """SIGKILL the trainer; the monotonic ns of the kill."""
    killed_at = time.monotonic_ns()
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    return killed_at


def kill_at_random(process: subprocess.Popen[bytes], side: Path, after: float) -> int:
    """SIGKILL the trainer ``after`` seconds once it logs; the monotonic ns of the kill."""
    wait_logging(process, side)
    time.sleep(after)
    return kill(process)


def steps_in_files(folder: Path, run_id: str) -> list[int]:
    """Every metric step of ``run_id`` in the local log / journal files of ``folder``, read
    block by block with fastavro, up to a torn tail."""
    codec = Codec()
    steps: list[int] = []
    for path in sorted(folder.glob("*.avro")):
        with path.open("rb") as file:
            try:
                for block in block_reader(file):
                    for record in block:
                        if record["run_id"] == run_id:
                            steps.extend(decode_batch(codec, record["value"]).metrics.steps)
            except (ValueError, EOFError) as error:  # a torn tail: the blocks before count
                logger.info("%s: torn tail (%s)", path, error)
    return steps


def steps_in_topic(settings: Settings, run_id: str) -> list[int]:
    """Every metric step of ``run_id`` on the events topic (duplicates included)."""
    codec = Codec()
    steps: list[int] = []
    topic = Topics(settings.topic_prefix).events
    for record in read_topic(settings, topic, timeout=60.0):
        if record.key == run_id.encode():
            steps.extend(decode_batch(codec, record.value).metrics.steps)
    return steps


def check_window(survived: set[int], side: Path, killed_at: int) -> tuple[int, int]:
    """Assert that the surviving steps are 0..n-1 and n covers every point accepted 50 ms
    before the kill; (n, accepted before the window)."""
    accepted = reports(side)
    before = max(count for count, at in accepted if at <= killed_at - WINDOW_NS)
    durable = len(survived)
    assert survived == set(range(durable)), "a hole in what survived"
    last = accepted[-1][0]
    assert durable <= last + REPORT, "more points than the trainer accepted"
    assert durable >= before, (
        f"lost points accepted before the last 50 ms: {before - durable} of {before}"
    )
    # the first point missing was accepted after the last report that counts no more points
    # than survived: the journal was at most this far behind the kill
    window_ms = (killed_at - max(at for count, at in accepted if count <= durable)) / 1e6
    logger.warning(
        "kill: %d accepted 50 ms before, >= %d accepted at the kill, %d survived; "
        "the journal was <= %.1f ms behind",
        before,
        last,
        durable,
        window_ms,
    )
    return durable, before


def resend_by_next_client(settings: Settings, spill: Path, run_id: str) -> None:
    """A later client on the same journal folder: it adopts and resends the dead process's
    journal files while it logs one point of its own."""
    client = Client(settings=settings, spill_dir=spill)
    client.attach(run_id).log_param("resent_by", "next-client")
    assert client.close(120.0) == 0


@pytest.mark.integration
def test_kafka_trainer_killed_at_random_loses_only_the_last_50_ms(
    sdk_settings: Settings, tmp_path: Path
) -> None:
    rng = random.Random()
    uri = str(sdk_settings.tracking_uri)
    for kill in range(KILLS):
        run_id = f"kill-{kill}"
        spill = tmp_path / f"journal-{kill}"
        side = tmp_path / f"side-{kill}.txt"
        trainer = launch(uri, run_id, side, spill, sdk_settings.topic_prefix)
        try:
            killed_at = kill_at_random(trainer, side, rng.uniform(0.3, 1.5))
        finally:
            if trainer.poll() is None:
                trainer.kill()
        journaled = steps_in_files(spill, run_id)
        acknowledged = steps_in_topic(sdk_settings, run_id)
        durable, _ = check_window(set(journaled) | set(acknowledged), side, killed_at)
        assert list(spill.glob("*.avro")), "the killed process left no journal file"
        resend_by_next_client(sdk_settings, spill, run_id)
        assert set(steps_in_topic(sdk_settings, run_id)) == set(range(durable))
        assert list(spill.glob("*.avro")) == [], "journal files left after the resend"


@pytest.mark.integration
def test_file_trainer_killed_at_random_loses_only_the_last_50_ms(tmp_path: Path) -> None:
    rng = random.Random()
    for kill in range(KILLS):
        run_id = f"kill-{kill}"
        folder = tmp_path / f"track-{kill}"
        side = tmp_path / f"side-{kill}.txt"
        trainer = launch(f"file://{folder}", run_id, side, tmp_path / "spill", "runstream")
        try:
            killed_at = kill_at_random(trainer, side, rng.uniform(0.3, 1.5))
        finally:
            if trainer.poll() is None:
                trainer.kill()
        check_window(set(steps_in_files(folder / "events", run_id)), side, killed_at)


@pytest.mark.integration
def test_broker_stopped_20_s_then_trainer_killed_loses_nothing_after_resend(
    private_kafka: PrivateKafka, tmp_path: Path
) -> None:
    private_kafka.start()
    settings = Settings.resolve(
        f"kafka://{private_kafka.bootstrap}", topic_prefix="journal", environ={}
    )
    ensure_topics(settings, partitions=3)
    spill = tmp_path / "journal"
    side = tmp_path / "side.txt"
    trainer = launch(str(settings.tracking_uri), "outage", side, spill, "journal", rate=50_000)
    try:
        wait_logging(trainer, side)
        time.sleep(1.0)
        private_kafka.stop()
        stopped = time.monotonic()
        time.sleep(20.0)
        assert trainer.poll() is None, "the trainer did not survive the outage"
        killed_at = kill(trainer)
    finally:
        if trainer.poll() is None:
            trainer.kill()
    outage_points = reports(side)[-1][0] - max(
        count for count, at in reports(side) if at <= stopped * 1e9
    )
    assert outage_points >= 500_000, f"only {outage_points} points logged during the outage"
    journaled = set(steps_in_files(spill, "outage"))
    private_kafka.start()
    durable, _ = check_window(journaled | set(steps_in_topic(settings, "outage")), side, killed_at)
    resend_by_next_client(settings, spill, "outage")
    assert set(steps_in_topic(settings, "outage")) == set(range(durable))
    assert list(spill.glob("*.avro")) == [], "journal files left after the resend"


@pytest.mark.integration
def test_runstream_sync_resends_the_journal_of_a_killed_trainer(
    sdk_settings: Settings, tmp_path: Path
) -> None:
    spill = tmp_path / "journal"
    side = tmp_path / "side.txt"
    uri = str(sdk_settings.tracking_uri)
    trainer = launch(uri, "synced", side, spill, sdk_settings.topic_prefix)
    try:
        killed_at = kill_at_random(trainer, side, random.uniform(0.3, 1.0))
    finally:
        if trainer.poll() is None:
            trainer.kill()
    survived = set(steps_in_files(spill, "synced")) | set(steps_in_topic(sdk_settings, "synced"))
    durable, _ = check_window(survived, side, killed_at)
    env = {**os.environ, "RUNSTREAM_SPILL_DIR": str(spill)}
    command = [str(Path(sys.executable).parent / "runstream"), "sync", "--journal", "--to", uri]
    command += ["--topic-prefix", sdk_settings.topic_prefix]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "resent" in done.stdout
    assert set(steps_in_topic(sdk_settings, "synced")) == set(range(durable))
    assert list(spill.glob("*.avro")) == []
