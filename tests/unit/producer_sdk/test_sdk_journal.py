"""The journal's bookkeeping on a real folder: a file is deleted once closed with every
batch acknowledged, batches waiting for a resend are read back from their file, and only the
files of ended processes are adopted (never a locked one or one of a live pid)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runstream.core.locallog import LogWriter, read_file
from runstream.tracking.journal import Journal, orphans


def test_a_closed_file_goes_once_every_batch_is_acknowledged(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "dest-producer", file_bytes=10)
    first = journal.append("r", b"x" * 8, 3)
    second = journal.append("r", b"y" * 8, 2)  # past 10 bytes: the file is closed
    assert first is not None and second is not None
    (path,) = tmp_path.glob("*.avro")
    assert [r.value for r in read_file(path)] == [b"x" * 8, b"y" * 8]
    journal.acknowledged(first)
    assert path.exists()
    journal.acknowledged(second)
    assert not path.exists()


def test_unsent_batches_are_read_back_in_order(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "dest-producer")
    entries = [journal.append("r", bytes([i]), 1) for i in range(5)]
    assert all(entries)
    for entry in (entries[3], entries[1]):
        assert entry is not None
        journal.unsent(entry)
    assert journal.has_unsent()
    assert [value for _, _, value in journal.resend()] == [b"\x01", b"\x03"]
    assert not journal.has_unsent()
    assert journal.close() == [entries[0].file.path]  # kept: nothing acknowledged


def test_only_files_of_ended_processes_are_adopted(tmp_path: Path) -> None:
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(ended.stdout)
    LogWriter(tmp_path / f"dest-aaaa-{dead_pid}-1.avro").close()
    LogWriter(tmp_path / f"other-aaaa-{dead_pid}-1.avro").close()  # another destination
    held = LogWriter(tmp_path / f"dest-bbbb-{dead_pid}-2.avro")  # locked by a writer
    journal = Journal(tmp_path, "dest-mine")
    assert journal.append("r", b"v", 1) is not None
    journal.close()  # closed but not acknowledged: this process's (live pid) file
    adopted = orphans(tmp_path, "dest")
    assert [o.path.name for o in adopted] == [f"dest-aaaa-{dead_pid}-1.avro"]
    assert orphans(tmp_path, "dest") == []  # locked by the adopter now
    adopted[0].release(delete=True)
    held.close()
    assert not (tmp_path / f"dest-aaaa-{dead_pid}-1.avro").exists()
