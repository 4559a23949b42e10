"""The artifact contract without a store: path rules, layout, run state encoding."""

from __future__ import annotations

import io

import pytest
from fastavro import schemaless_writer

from runstream.contract import ArtifactLogged, Codec, Event, EventBatch, Producer, versions
from runstream.contract.codec import SINGLE_OBJECT_MAGIC
from runstream.contract.exceptions import InvalidEventError, UnsafeArtifactPathError
from runstream.contract.identifiers import check_artifact_path
from runstream.contract.layout import artifact_object_path, artifact_path, artifacts_dir
from runstream.contract.state import (
    ArtifactRegister,
    RunState,
    decode_state,
    encode_state,
    fold,
    state_record,
)
from runstream.contract.validation import validate_batch

SHA = "ab" * 32


@pytest.mark.parametrize("good", ["a.txt", "model/model.pkl", "x y/z=1,@+.bin", "..a/b..", "a-b_c"])
def test_safe_paths_pass(good: str) -> None:
    assert check_artifact_path(good) == good


@pytest.mark.parametrize(
    "bad",
    ["", "/abs", "../x", "a/../b", "a/./b", "a//b", "a/", "a\\b", " lead", "a/\x00", "x" * 1025],
)
def test_unsafe_paths_are_refused(bad: str) -> None:
    with pytest.raises(UnsafeArtifactPathError):
        check_artifact_path(bad)


def test_layout_is_content_addressed_under_the_run() -> None:
    assert artifacts_dir("bucket/p", "r1") == "bucket/p/artifacts/run_id=r1"
    assert (
        artifact_object_path("bucket/p", "r1", SHA)
        == f"bucket/p/artifacts/run_id=r1/sha256/ab/{SHA}"
    )
    with pytest.raises(ValueError, match="sha256"):
        artifact_object_path("b", "r1", "../../x")
    assert artifact_path("dir/", "", "f.txt") == "dir/f.txt"
    with pytest.raises(UnsafeArtifactPathError):
        artifact_path("/", "../f")


def test_a_batch_with_an_escaping_artifact_path_is_a_dead_letter() -> None:
    bad = EventBatch("r", Producer("p", "h", 1), 0, (Event(1, ArtifactLogged("../x", "u")),))
    with pytest.raises(InvalidEventError) as caught:
        validate_batch(bad)
    assert caught.value.reason == "artifact_path"


def state_with_artifacts() -> RunState:
    batch = EventBatch(
        "r",
        Producer("p", "h", 1),
        5,
        (
            Event(10, ArtifactLogged("a.txt", "file:///s/1", 3, SHA, "text/plain")),
            Event(9, ArtifactLogged("a.txt", "file:///s/0", 2, SHA, "text/plain")),
        ),
    )
    return fold([batch])["r"]


def test_the_latest_artifact_of_a_path_wins_and_the_state_round_trips() -> None:
    state = state_with_artifacts()
    assert state.artifacts == {
        "a.txt": ArtifactRegister("file:///s/1", 3, SHA, "text/plain", (10, "p", 5))
    }
    assert decode_state(Codec(), encode_state(Codec(), state)) == state
    assert state.as_dict()["artifacts"]["a.txt"]["size"] == 3


def test_a_v1_run_state_decodes_with_no_artifacts() -> None:
    v1 = next(v for v in versions.all_versions() if (v.name, v.version) == ("run_state", 1))
    record = state_record(state_with_artifacts())
    del record["artifacts"]
    buffer = io.BytesIO()
    buffer.write(SINGLE_OBJECT_MAGIC + v1.fingerprint)
    schemaless_writer(buffer, v1.parsed, record)
    decoded = decode_state(Codec(), buffer.getvalue())
    assert decoded.run_id == "r" and decoded.artifacts == {}
