"""Every point in Parquet exactly once, at the documented layout, with two workers in the
group; latency of ended and quiet runs."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from runstream.compactor import BufferPolicy
from runstream.contract.layout import is_merged, parse_part_name

pytestmark = pytest.mark.integration


def test_big_and_short_runs_land_exactly_once_with_two_workers(
    helpers, produce, start_worker, s3_settings
):
    keys = ["loss", "acc", "lr"]
    batches = []
    for run in range(3):  # 3 runs x 3 metrics x 25k points, in batches of 1000 steps
        for chunk in range(25):
            batches.append(
                helpers.metric_batch(
                    f"big{run}", f"prod{run}", chunk * 3000, keys, chunk * 1000, 1000, chunk == 24
                )
            )
    for run in range(20):  # 20 short runs of 3 x 40 points, ended
        batches.append(helpers.metric_batch(f"short{run}", f"sp{run}", 0, keys, 0, 40, True))
    truth = helpers.truth_of(batches)
    assert len(truth) == 3 * 3 * 25_000 + 20 * 3 * 40
    first, second = start_worker(), start_worker()
    helpers.wait_for(
        lambda: all(w.compactor.assigned for w in (first, second)),
        60,
        "both workers hold partitions",
        0.2,
    )
    produce(batches)
    helpers.wait_for(
        lambda: len(helpers.store_points(s3_settings)) >= len(truth), 120, "all points in Parquet"
    )
    time.sleep(2)  # anything extra (a duplicate) would show up now
    points = helpers.store_points(s3_settings)
    identities = Counter(identity for identity, _ in points)
    assert [i for i, n in identities.items() if n > 1] == []
    assert dict(points) == truth  # row by row: key, step, timestamp, value
    rows = helpers.store_rows(s3_settings)
    for run_id, path, table in rows:  # the layout: partition and offsets named by the file
        partition, first_offset, last_offset = parse_part_name(path)
        assert path.split("/")[-2] == f"run_id={run_id}"
        assert set(table["partition"].to_pylist()) == {partition}
        offsets = table["offset"].to_pylist()
        assert first_offset <= min(offsets) and max(offsets) <= last_offset
        pairs = list(zip(table["key"].to_pylist(), table["step"].to_pylist(), strict=True))
        assert pairs == sorted(pairs)
    assert {run_id for run_id, _, _ in rows} == {f"big{r}" for r in range(3)} | {
        f"short{r}" for r in range(20)
    }

    def one_file_per_run() -> bool:
        rows = helpers.store_rows(s3_settings)
        return len(rows) == 23 and all(is_merged(p) for r, p, _ in rows if r.startswith("big"))

    helpers.wait_for(one_file_per_run, 30, "every ended run in one file, big runs merged")
    stats = [first.stop(), second.stop()]
    assert all(s.records > 0 for s in stats), f"both workers got partitions: {stats}"


def test_a_revoked_partition_is_handed_over_with_its_writes_landed(
    helpers, produce, start_worker, s3_settings
):
    """A second worker joins while the first one's files are still on their way to a slow
    S3. The partitions that move must reach it only once those files have landed and their
    offsets are committed: otherwise it reads the same points again, cuts them into files
    of other offset ranges (here: one file for three messages the first worker wrote as
    three), and some points end up in two files. Without the hand-off this failed 2 of 2."""
    policy = BufferPolicy(rotate_interval_s=0.5)
    first = start_worker(policy=policy, write_delay_s=6.0)
    helpers.wait_for(lambda: len(first.compactor.assigned) == 4, 60, "first worker assigned", 0.2)
    runs = [f"h{i}" for i in range(8)]
    batches = []
    for n in range(3):  # three messages per run, each written by age as a file of its own
        batches += [helpers.metric_batch(r, f"p-{r}", n * 100, ["a"], n * 100, 100) for r in runs]
        produce(batches[-len(runs) :])
        time.sleep(1.5)
    assert first.compactor.pending > 0, "the first worker has no write in flight"
    second = start_worker(policy=policy)
    helpers.wait_for(lambda: bool(second.compactor.assigned), 60, "partitions moved", 0.2)
    truth = helpers.truth_of(batches)
    helpers.wait_for(
        lambda: len(helpers.store_points(s3_settings)) >= len(truth), 60, "all points in Parquet"
    )
    time.sleep(3)  # a second copy of a point would land now
    points = helpers.store_points(s3_settings)
    assert [i for i, n in Counter(i for i, _ in points).items() if n > 1] == []
    assert dict(points) == truth


def test_an_ended_run_is_written_within_a_second_and_a_quiet_one_within_the_interval(
    helpers, produce, start_worker, s3_settings
):
    start_worker(policy=BufferPolicy(rotate_interval_s=4.0), uploads=True)  # as the CLI
    produce([helpers.metric_batch("warmup", "w", 0, ["a"], 0, 1, True)])
    helpers.wait_for(lambda: len(helpers.store_points(s3_settings)) == 1, 60, "worker ready", 0.2)
    produce([helpers.metric_batch("ended", "e", 0, ["a"], 0, 499)])
    produce([helpers.metric_batch("ended", "e", 499, ["a"], 499, 1, True)])
    sent = time.monotonic()
    helpers.wait_for(
        lambda: (
            sum(1 for (run, _, _), _ in helpers.store_points(s3_settings) if run == "ended") == 500
        ),
        5,
        "ended run in Parquet",
        0.05,
    )
    ended_latency = time.monotonic() - sent
    produce([helpers.metric_batch("quiet", "q", 0, ["a"], 0, 500)])
    sent = time.monotonic()
    helpers.wait_for(
        lambda: (
            sum(1 for (run, _, _), _ in helpers.store_points(s3_settings) if run == "quiet") == 500
        ),
        15,
        "quiet run in Parquet",
        0.1,
    )
    quiet_latency = time.monotonic() - sent
    print(f"ended run: {ended_latency:.2f}s after RunEnded; quiet run: {quiet_latency:.2f}s")
    assert ended_latency < 1.0
    assert quiet_latency < 4.0 + 1.0
