"""Fixtures shared by the integration tests: a private S3 server to stop and restart."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.5) -> float:
    """Seconds until ``condition()`` held; fail the test after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what}: not within {timeout:.0f}s")
        time.sleep(every)
    return time.monotonic() - start


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class PrivateS3:
    """A SeaweedFS of this test's own (``weed mini``), to stop and restart at will."""

    folder: Path
    ports: tuple[int, int, int, int]
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports[3]}"

    def start(self) -> None:
        master, volume, filer, s3 = self.ports
        log = open(self.folder / "weed.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                str(REPO / ".venv" / "bin" / "weed"),
                "mini",
                f"-dir={self.folder / 'data'}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-master.port={master}",
                f"-volume.port={volume}",
                f"-filer.port={filer}",
                f"-s3.port={s3}",
                "-bucket=runstream",
                "-admin.ui=false",
                "-webdav=false",
            ],
            cwd=self.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "AWS_ACCESS_KEY_ID": "runstream",
                "AWS_SECRET_ACCESS_KEY": "runstream-secret",
            },
        )
        log.close()
        wait_for(self._answers, 90, f"private S3 on {self.endpoint}", every=0.3)

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            pytest.fail(f"private weed exited: {(self.folder / 'weed.log').read_text()[-2000:]}")
        try:
            urllib.request.urlopen(
                urllib.request.Request(f"{self.endpoint}/runstream", method="HEAD"), timeout=2
            )
        except urllib.error.HTTPError as error:
            return error.code in (403, 200)
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


@pytest.fixture
def private_s3(tmp_path: Path) -> Iterator[PrivateS3]:
    """A private S3 server on free ports (never the shared one), stopped at teardown."""
    for _ in range(50):
        # below 22,700 so that every gRPC port (+10,000) stays under the kernel's ephemeral
        # range (32,768 and up), where any outgoing connection may take it after this check
        base = random.randrange(20_000, 22_700, 10)
        ports = (base, base + 1, base + 2, base + 3)
        if all(_free(p) and _free(p + 10_000) for p in ports):
            break
    else:
        pytest.fail("no free ports for a private S3 server")
    folder = tmp_path / "weed"
    (folder / "data").mkdir(parents=True)
    server = PrivateS3(folder, ports)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


STACK = REPO / "deploy" / "stack"
# The 3-broker cluster's ports: brokers 19092/19094/19096 with their controllers on the
# ports after them, S3 on 22733, SeaweedFS's inner servers from 22750 (and 32750 for gRPC):
# all under the kernel's ephemeral range (32,768 and up), where an outgoing connection may
# take a port first (a cluster once failed on "port 34002 for Filer is not available"), and
# above the private S3 servers' 20,000-22,700.
CLUSTER_KAFKA_PORT = 19092
CLUSTER_S3_PORT = 22733
CLUSTER_WEED_BASE = 22750


@dataclass
class Cluster:
    """A 3-broker KRaft cluster and an S3 server of this test session's own, run by
    ``deploy/stack up --brokers 3`` in a state folder of its own."""

    state: Path
    brokers: int = 3

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RUNSTREAM_STATE_DIR": str(self.state),
            "RUNSTREAM_STACK_KAFKA_PORT": str(CLUSTER_KAFKA_PORT),
            "RUNSTREAM_STACK_S3_PORT": str(CLUSTER_S3_PORT),
            "RUNSTREAM_STACK_WEED_BASE": str(CLUSTER_WEED_BASE),
        }

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.port(node)}" for node in self.nodes)

    @property
    def nodes(self) -> range:
        return range(1, self.brokers + 1)

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{CLUSTER_S3_PORT}"

    def port(self, node: int) -> int:
        return CLUSTER_KAFKA_PORT + 2 * (node - 1)

    def stack(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``deploy/stack ARGS --brokers N`` on this cluster's state folder."""
        return subprocess.run(
            [str(STACK), *args, "--brokers", str(self.brokers)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def up(self) -> None:
        """Start what is not running (a killed broker), wait until every server answers and
        the cluster's metadata lists every broker (a broker answers on its port a moment
        before the controller has registered it)."""
        from confluent_kafka.admin import AdminClient

        result = self.stack("up")
        if result.returncode != 0:
            pytest.fail(f"deploy/stack up --brokers {self.brokers} failed:\n{result.stderr}")
        admins = [
            AdminClient({"bootstrap.servers": f"127.0.0.1:{self.port(n)}"}) for n in self.nodes
        ]
        wait_for(  # asked of each broker: a late one's metadata may still miss a peer
            lambda: all(len(a.list_topics(timeout=10).brokers) == self.brokers for a in admins),
            60,
            f"all {self.brokers} brokers registered, as every broker sees it",
        )

    def pid(self, node: int) -> int:
        return int((self.state / f"kafka-{node}" / "kafka.pid").read_text())

    def kill(self, node: int) -> None:
        """SIGKILL one broker (and the controller in its JVM)."""
        os.kill(self.pid(node), signal.SIGKILL)

    def leaders(self, topic: str) -> dict[int, int]:
        """Node id -> how many partitions of ``topic`` it leads."""
        from confluent_kafka.admin import AdminClient

        meta = AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(topic, timeout=20)
        counts = dict.fromkeys(self.nodes, 0)
        for partition in meta.topics[topic].partitions.values():
            if partition.leader in counts:
                counts[partition.leader] += 1
        return counts

    def fully_replicated(self, topic: str) -> bool:
        """Every partition of ``topic`` has all its replicas in sync."""
        from confluent_kafka.admin import AdminClient

        meta = AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(topic, timeout=20)
        partitions = meta.topics[topic].partitions.values()
        return bool(partitions) and all(
            len(p.isrs) == len(p.replicas) == self.brokers for p in partitions
        )


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The session's 3-broker cluster (started once, stopped at the end of the session: only
    the stack this fixture started, by its state folder)."""
    server = Cluster(tmp_path_factory.mktemp("cluster") / "state")
    try:
        server.up()
        yield server
    finally:
        server.stack("down", timeout=120)
