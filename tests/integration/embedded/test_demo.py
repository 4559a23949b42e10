"""`runstream demo` end to end: on the embedded default, and through the local stack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runstream.core.settings import Settings

SMALL = ["--runs", "2", "--workers", "2", "--steps", "400"]


def _demo(cwd: Path, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "runstream.apps.cli", "demo", *SMALL, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _check_plot(path: Path) -> None:
    assert path.stat().st_size > 10_000
    pixels = np.asarray(Image.open(path).convert("L"))
    assert pixels.std() > 5, "the plot is blank"


def _check_table(output: str) -> None:
    assert "best val/loss" in output
    assert output.count("FINISHED") == 2
    # rank 0: 400 steps x (2 + 4 keys) + 40 validations x 2; rank 1: 400 x 4 keys
    assert output.count("4,080") == 2


def test_demo_on_the_embedded_default(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNSTREAM_")}
    output = _demo(tmp_path, env)
    _check_table(output)
    _check_plot(tmp_path / "runstream-demo.png")
    assert (tmp_path / "runstream-data" / "store" / "metrics").is_dir()


@pytest.mark.integration
def test_demo_through_kafka_and_s3(tmp_path: Path, s3_settings: Settings) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RUNSTREAM_")},
        "RUNSTREAM_TOPIC_PREFIX": s3_settings.topic_prefix,
    }
    output = _demo(
        tmp_path,
        env,
        "--tracking-uri",
        str(s3_settings.tracking_uri),
        "--store",
        s3_settings.store,
        "--s3-endpoint",
        str(s3_settings.s3_endpoint),
    )
    assert "stream processor published 2 run states" in output
    _check_table(output)
    _check_plot(tmp_path / "runstream-demo.png")
