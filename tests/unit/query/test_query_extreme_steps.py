"""Issue 17: negative and ±2**63 steps work in history and downsampling (from the files'
rollups and from raw points, compacted and still in the tail), in the engine and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from runstream.apps.embedded import process
from runstream.core.settings import Settings
from runstream.query import QueryEngine
from runstream.query import cli as query_cli
from runstream.tracking import Client

LOW, HIGH = -(2**63), 2**63 - 1


def _log(settings: Settings, tmp_path: Path, steps: list[int]) -> None:
    client = Client(settings=settings, spill_dir=tmp_path / "spill")
    run = client.start_run(run_id="neg", capture_code=False)
    for step in steps:
        run.log_metric("loss", float(step % 97), step=step)
    run.end()
    client.close()


@pytest.mark.parametrize("compacted", [False, True])
@pytest.mark.parametrize(
    "steps",
    [
        [-1, *range(0, 200_000, 7)],  # a negative step in a long metric: rollup buckets
        [LOW, -5, 0, 5, HIGH],  # the whole 64-bit range
        list(range(-3000, 0)),
    ],
)
def test_history_and_downsampling_take_any_64_bit_step(
    tmp_path: Path, steps: list[int], compacted: bool
) -> None:
    settings = Settings.resolve(f"file://{tmp_path / 'tracking'}", environ={})
    _log(settings, tmp_path, steps)
    if compacted:
        process(settings)
    with QueryEngine.from_settings(settings) as engine:
        history = engine.get_metric_history("neg", "loss")
        assert history["step"].to_pylist() == sorted(steps)
        for max_points in (1, 10, 1000):
            buckets = engine.get_metric_history("neg", "loss", max_points=max_points)
            assert 1 <= buckets.num_rows <= max_points
            assert min(buckets["first_step"].to_pylist()) == min(steps)
            assert max(buckets["step"].to_pylist()) == max(steps)
            assert max(buckets["max"].to_pylist()) == max(float(s % 97) for s in steps)
    result = CliRunner().invoke(
        query_cli.history, ["neg", "loss", "--tracking-uri", str(settings.tracking_uri)]
    )
    assert result.exit_code == 0, result.output
    assert str(min(steps)) in result.output
