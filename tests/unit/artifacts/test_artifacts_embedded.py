"""Artifacts on the embedded default: files, a folder, text, dicts, a figure and models
logged by the real SDK into the local store; listed, downloaded byte-identical, replayed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from matplotlib.figure import Figure
from sklearn.linear_model import LogisticRegression

from runstream.apps.embedded import process
from runstream.contract import ArtifactLogged
from runstream.contract.state import fold
from runstream.core.settings import Settings
from runstream.query import ArtifactNotFoundError, QueryEngine
from runstream.query import cli as query_cli
from runstream.tracking import ArtifactError, Client, ModelError, ValidationError
from runstream.tracking.artifacts import Upload, Uploader, UploadFile

from .conftest import log_batches, sha256_of, stored_objects


def make_folder(root: Path) -> dict[str, Path]:
    """A folder of three files, one larger than the caller-thread snapshot limit."""
    folder = root / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("alpha\n")
    (folder / "sub" / "b.csv").write_text("x,y\n1,2\n")
    (folder / "big.bin").write_bytes(np.random.default_rng(1).bytes((1 << 20) + 12345))
    return {
        "data/a.txt": folder / "a.txt",
        "data/sub/b.csv": folder / "sub" / "b.csv",
        "data/big.bin": folder / "big.bin",
    }


def trained_model() -> tuple[LogisticRegression, np.ndarray]:
    rng = np.random.default_rng(7)
    features = rng.normal(size=(60, 3))
    labels = (features[:, 0] + features[:, 1] > 0).astype(int)
    return LogisticRegression().fit(features, labels), features


def test_everything_logged_is_listed_downloaded_identical_and_the_model_predicts_the_same(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    files = make_folder(tmp_path)
    model, features = trained_model()
    figure = Figure()
    figure.add_subplot().plot([0, 1, 2], [2, 1, 3])
    with client.start_run("art", run_id="art-1", capture_code=False) as run:
        run.log_artifact(files["data/a.txt"].parent)
        run.log_artifact(files["data/a.txt"], "single")
        run.log_text("hello, artifacts\n", "notes/readme.md")
        run.log_dict({"lr": 0.1, "layers": [1, 2]}, "config.json")
        run.log_dict({"lr": 0.1, "layers": [1, 2]}, "config.yaml")
        run.log_figure(figure, "plots/curve.png")
        run.log_model(model, "model")
        run.log_model({"weights": [1, 2, 3]}, "plain")
    client.flush()

    with QueryEngine.from_settings(settings) as engine:
        listed = {a.path: a for a in engine.list_artifacts("art-1")}
        assert sorted(listed) == sorted(
            [
                *files,
                "single/a.txt",
                "notes/readme.md",
                "config.json",
                "config.yaml",
                "plots/curve.png",
                "model/model.pkl",
                "model/runstream_model.json",
                "plain/model.pkl",
                "plain/runstream_model.json",
            ]
        )
        assert [a.path for a in engine.list_artifacts("art-1", "data")] == sorted(files)
        assert listed["plots/curve.png"].media_type == "image/png"
        assert listed["config.yaml"].media_type == "application/yaml"
        run_view = engine.get_run("art-1")
        assert {p: a.size for p, a in run_view.artifacts.items()} == {
            p: a.size for p, a in listed.items()
        }
        dst = tmp_path / "downloaded"
        assert engine.download_artifacts("art-1", None, dst) == dst
    for path, local in files.items():
        assert sha256_of(dst / path) == sha256_of(local) == listed[path].sha256
    assert (dst / "notes/readme.md").read_text() == "hello, artifacts\n"
    assert json.loads((dst / "config.json").read_text()) == {"lr": 0.1, "layers": [1, 2]}
    assert yaml.safe_load((dst / "config.yaml").read_text()) == {"lr": 0.1, "layers": [1, 2]}
    assert (dst / "plots/curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest = json.loads((dst / "model/runstream_model.json").read_text())
    assert manifest["flavor"] == "sklearn" and manifest["library"] == "scikit-learn"

    loaded = client.load_model("art-1", "model")
    assert isinstance(loaded, LogisticRegression)
    assert (loaded.predict(features) == model.predict(features)).all()
    assert np.array_equal(loaded.predict_proba(features), model.predict_proba(features))
    assert client.load_model("art-1", "plain") == {"weights": [1, 2, 3]}


def test_a_model_manifest_is_recorded_after_its_file(client: Client, settings: Settings) -> None:
    run = client.start_run(run_id="order-1", capture_code=False)
    run.log_model([1, 2, 3], "m")
    client.flush()
    paths = [
        e.payload.path
        for b in log_batches(settings)
        for e in b.logical_events()
        if isinstance(e.payload, ArtifactLogged)
    ]
    assert paths == ["m/model.pkl", "m/runstream_model.json"]


def test_the_same_bytes_logged_twice_are_stored_once(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    local = tmp_path / "same.txt"
    local.write_text("same bytes")
    run = client.start_run(run_id="dedup-1", capture_code=False)
    run.log_artifact(local)
    run.log_artifact(local, "copy")
    run.log_text("same bytes", "third.txt")
    client.flush()
    assert len(stored_objects(settings, "dedup-1")) == 1
    with QueryEngine.from_settings(settings) as engine:
        listed = engine.list_artifacts("dedup-1")
    assert [a.path for a in listed] == ["copy/same.txt", "same.txt", "third.txt"]
    assert len({a.uri for a in listed}) == 1


def test_replaying_the_log_gives_the_same_artifacts(client: Client, settings: Settings) -> None:
    run = client.start_run(run_id="replay-1", capture_code=False)
    run.log_text("v1", "a.txt")
    run.log_text("v2", "a.txt")  # the later one wins
    run.log_dict({"k": 1}, "d.json")
    run.end()
    client.flush()
    with QueryEngine.from_settings(settings) as engine:
        live = engine.get_run("replay-1").artifacts
    replayed = fold(log_batches(settings))["replay-1"]
    assert {p: (a.uri, a.size, a.sha256) for p, a in live.items()} == {
        p: (a.uri, a.size, a.sha256) for p, a in replayed.artifacts.items()
    }
    assert live["a.txt"].size == 2
    process(settings)  # the compactor's snapshot holds them too
    from runstream.compactor.snapshots import Snapshots
    from runstream.compactor.store import Store
    from runstream.contract import Codec
    from runstream.core.filesystem import open_store

    snapshot = Snapshots(Store(*open_store(settings)), Codec()).load("replay-1")
    assert snapshot is not None
    assert snapshot.artifacts == replayed.artifacts


def test_a_deleted_run_loses_its_stored_artifacts(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    run = client.start_run(run_id="gone-1", capture_code=False)
    run.log_text("bye", "a.txt")
    run.log_model({"w": 1}, "m")
    keep = client.start_run(run_id="kept-1", capture_code=False)
    keep.log_text("stay", "a.txt")
    client.flush()
    assert len(stored_objects(settings, "gone-1")) == 3
    process(settings)
    assert len(stored_objects(settings, "gone-1")) == 3  # not deleted yet
    client.delete_run("gone-1", "cleanup")
    client.flush()
    process(settings)
    assert stored_objects(settings, "gone-1") == []
    assert len(stored_objects(settings, "kept-1")) == 1


@pytest.mark.parametrize("bad", ["../escape", "a/../../b", "/etc/passwd", "a//b", "a\\b", "."])
def test_a_path_that_escapes_the_run_is_refused(
    client: Client, settings: Settings, bad: str
) -> None:
    run = client.start_run(run_id="bad-1", capture_code=False)
    with pytest.raises(ValidationError, match="artifact"):
        run.log_text("x", bad)
    with pytest.raises(ValidationError):
        run.log_model({"w": 1}, bad)
    client.flush()
    assert stored_objects(settings, "bad-1") == []


def test_bad_input_is_refused_and_nothing_is_stored(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    run = client.start_run(run_id="bad-2", capture_code=False)
    with pytest.raises(ArtifactError, match="does not exist") as missing:
        run.log_artifact(tmp_path / "nope.bin")
    assert missing.value.run_id == "bad-2"
    with pytest.raises(ModelError, match="cannot save"):
        run.log_model(lambda x: x, "lambda-model")
    with pytest.raises(ValidationError, match="extension"):
        run.log_dict({"a": 1}, "config.toml")
    with pytest.raises(ValidationError, match="serialise"):
        run.log_dict({"a": object()}, "config.json")
    with pytest.raises(ValidationError, match="savefig"):
        run.log_figure("not a figure", "f.png")
    client.flush()
    assert stored_objects(settings, "bad-2") == []
    with QueryEngine.from_settings(settings) as engine:
        assert engine.list_artifacts("bad-2") == []
        with pytest.raises(ArtifactNotFoundError):
            engine.list_artifacts("bad-2", "lambda-model")


def test_an_unsaveable_model_leaves_no_temporary_folder(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    run = client.start_run(run_id="bad-3", capture_code=False)
    with pytest.raises(ModelError):
        run.log_model(lambda x: x, "m")
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_vanished_large_file_fails_the_wait_and_records_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    recorded: list[ArtifactLogged] = []
    uploader = Uploader(settings, lambda run_id, event: recorded.append(event))
    gone = UploadFile("big.bin", None, tmp_path / "gone.bin")  # a large file is read late
    uploader.submit(Upload("bad-4", [gone]))
    with pytest.raises(ArtifactError, match="bad-4"):
        uploader.wait(30.0)
    assert recorded == []
    assert stored_objects(settings, "bad-4") == []
    uploader.close(1.0)


def test_the_cli_lists_and_downloads(client: Client, settings: Settings, tmp_path: Path) -> None:
    run = client.start_run(run_id="cli-1", capture_code=False)
    run.log_text("cli text", "docs/a.txt")
    client.flush()
    uri = ["--tracking-uri", str(settings.tracking_uri)]
    listed = CliRunner().invoke(query_cli.artifacts, ["cli-1", *uri])
    assert listed.exit_code == 0, listed.output
    # in a pipe: a header line and one whole row per artifact (no title, nothing cut)
    [header, row] = listed.output.splitlines()
    assert header.split() == ["path", "size", "media_type", "sha256", "uri"]
    assert row.startswith("docs/a.txt") and "run_id=cli-1" in row
    dst = tmp_path / "cli-dst"
    got = CliRunner().invoke(query_cli.artifacts, ["cli-1", "docs", "--download", str(dst), *uri])
    assert got.exit_code == 0, got.output
    assert (dst / "docs/a.txt").read_text() == "cli text"
    missing = CliRunner().invoke(query_cli.artifacts, ["cli-1", "nothing", *uri])
    assert missing.exit_code != 0
