import pytest

from runstream.contract.exceptions import UnsafeRunIdError
from runstream.contract.layout import (
    is_merged,
    live_files,
    merged_name,
    parse_part_name,
    part_name,
    run_table_path,
    runs_glob,
)


def test_names_round_trip_and_sort_in_offset_order():
    assert parse_part_name(part_name(3, 9, 10)) == (3, 9, 10)
    assert parse_part_name("x/" + merged_name(3, 9, 100)) == (3, 9, 100)
    assert is_merged(merged_name(0, 1, 2)) and not is_merged(part_name(0, 1, 2))
    assert part_name(0, 9, 9) < part_name(0, 10, 10)
    assert parse_part_name("part-1-2.parquet") is None


def test_a_merged_file_hides_the_files_it_covers_of_its_partition_only():
    names = [
        "r/" + part_name(0, 0, 4),
        "r/" + part_name(0, 5, 9),
        "r/" + part_name(1, 0, 9),
        "r/" + part_name(0, 10, 12),
        "r/" + merged_name(0, 0, 9),
        "r/_SUCCESS",
    ]
    assert live_files(names) == [
        "r/" + merged_name(0, 0, 9),
        "r/" + part_name(0, 10, 12),
        "r/" + part_name(1, 0, 9),
    ]
    assert live_files([*names, "r/" + merged_name(0, 0, 12)]) == [
        "r/" + merged_name(0, 0, 12),
        "r/" + part_name(1, 0, 9),
    ]
    # a merge of a single file hides that file too
    assert live_files(["r/" + part_name(0, 0, 4), "r/" + merged_name(0, 0, 4)]) == [
        "r/" + merged_name(0, 0, 4)
    ]


def test_run_snapshot_paths():
    assert run_table_path("b/p", "r1", "params") == "b/p/runs/run_id=r1/params.parquet"
    assert runs_glob("b/p", "run") == "b/p/runs/run_id=*/run.parquet"
    with pytest.raises(ValueError, match="table"):
        run_table_path("b", "r1", "metrics")
    with pytest.raises(UnsafeRunIdError):
        run_table_path("b", "../r1", "run")
