"""Issue 17: ``artifacts --download`` reads only inside the store, whatever URI an
ArtifactLogged event names."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fsspec.implementations.local import LocalFileSystem

from runstream.contract.layout import artifact_object_path
from runstream.query.artifacts import Artifact, download
from runstream.query.exceptions import ArtifactReadError


def test_a_uri_outside_the_store_is_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_bytes(b"private key")
    digest = hashlib.sha256(b"private key").hexdigest()
    root = str(tmp_path / "store")
    forged = Artifact("model.bin", f"file://{secret}", len(b"private key"), digest, "x")
    with pytest.raises(ArtifactReadError):  # the store has no object of that digest
        download(LocalFileSystem(), root, "r-1", [forged], tmp_path / "out")
    assert not (tmp_path / "out" / "model.bin").exists()

    stored = artifact_object_path(root, "r-1", digest)
    Path(stored).parent.mkdir(parents=True)
    Path(stored).write_bytes(b"private key")
    secret.write_bytes(b"changed outside")  # the URI's file is not what is copied
    download(LocalFileSystem(), root, "r-1", [forged], tmp_path / "out")
    assert (tmp_path / "out" / "model.bin").read_bytes() == b"private key"


def test_an_unsafe_digest_is_refused(tmp_path: Path) -> None:
    bad = Artifact("m", "file:///etc/passwd", 1, "../../../etc/passwd", "x")
    with pytest.raises(ArtifactReadError):
        download(LocalFileSystem(), str(tmp_path), "r-1", [bad], tmp_path / "out")
