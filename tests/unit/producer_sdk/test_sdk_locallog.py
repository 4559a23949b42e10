"""The embedded log format: round trip, positions, stable file numbers, torn tails."""

from __future__ import annotations

from pathlib import Path

from runstream.core.locallog import LogWriter, file_number, is_locked, read_file, read_log


def _write(path: Path, blocks: list[list[tuple[str, bytes]]]) -> None:
    writer = LogWriter(path)
    for block in blocks:
        writer.append(block)
    writer.close()


def test_round_trip_with_positions(tmp_path: Path) -> None:
    _write(tmp_path / "a.avro", [[("r1", b"one"), ("r1", b"two")], [("r2", b"three")]])
    _write(tmp_path / "b.avro", [[("r3", b"four")]])
    records = list(read_log(tmp_path))
    assert [(r.key, r.value, r.offset) for r in records] == [
        (b"r1", b"one", 0),
        (b"r1", b"two", 1),
        (b"r2", b"three", 2),
        (b"r3", b"four", 0),
    ]
    a, b = file_number(tmp_path / "a.avro"), file_number(tmp_path / "b.avro")
    assert {r.partition for r in records} == {a, b} and a != b
    later = list(read_log(tmp_path, {a: 2, b: 1}))
    assert [(r.value, r.offset) for r in later] == [(b"three", 2)]


def test_file_number_is_stable_and_positive(tmp_path: Path) -> None:
    number = file_number(tmp_path / "0123abcd.avro")
    assert number == file_number(Path("/elsewhere/0123abcd.avro"))
    assert 0 <= number < 2**63


def test_torn_tail_keeps_every_whole_record(tmp_path: Path) -> None:
    path = tmp_path / "torn.avro"
    _write(path, [[("r", b"x" * 100)], [("r", b"y" * 100)], [("r", b"z" * 100)]])
    size = path.stat().st_size
    for cut in (size - 1, size - 20, size - 60):
        torn = tmp_path / "cut" / f"{cut}.avro"
        torn.parent.mkdir(exist_ok=True)
        torn.write_bytes(path.read_bytes()[:cut])
        assert [r.value[:1] for r in read_file(torn)] == [b"x", b"y"]
    empty = tmp_path / "cut" / "empty.avro"
    empty.write_bytes(b"")
    assert list(read_file(empty)) == []


def test_writer_holds_a_lock_until_closed(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "live.avro")
    writer.append([("r", b"v")])
    assert is_locked(writer.path)
    assert [r.value for r in read_file(writer.path)] == [b"v"]  # readable while written
    writer.close()
    assert not is_locked(writer.path)
