"""Artifacts through the local stack: events on Kafka, objects on S3 (SeaweedFS). Files, a
folder, a text, a figure and a scikit-learn model round-trip byte for byte; replay of the
topic gives the same artifacts; an S3 server stopped during the uploads loses nothing and
no event points at a missing object."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.tree import DecisionTreeClassifier

from runstream.core.filesystem import open_store
from runstream.core.settings import Settings
from runstream.processor.replay import replay
from runstream.query import QueryEngine
from runstream.tracking import Client
from runstream.tracking.artifacts import UploadPolicy

pytestmark = pytest.mark.integration


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_files(root: Path) -> dict[str, Path]:
    folder = root / "inputs"
    (folder / "deep").mkdir(parents=True)
    (folder / "a.json").write_text('{"a": 1}')
    (folder / "deep" / "b.txt").write_text("bee\n" * 100)
    (folder / "large.bin").write_bytes(np.random.default_rng(3).bytes(3 << 20))
    return {
        f"inputs/{p.relative_to(folder).as_posix()}": p for p in folder.rglob("*") if p.is_file()
    }


def test_files_text_figure_and_model_round_trip_and_replay_agrees(
    stack_settings: Settings, tmp_path: Path
) -> None:
    files = make_files(tmp_path)
    rng = np.random.default_rng(5)
    features = rng.normal(size=(80, 4))
    labels = (features[:, 2] > 0).astype(int)
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(features, labels)
    figure = Figure()
    figure.add_subplot().plot(range(10), [x * x for x in range(10)])
    client = Client(settings=stack_settings, spill_dir=tmp_path / "spill")
    try:
        with client.start_run("stack-art", run_id="stack-art-1", capture_code=False) as run:
            run.log_artifact(files["inputs/a.json"].parent)
            run.log_text("notes", "notes.txt")
            run.log_figure(figure, "figures/square.svg")
            run.log_model(model, "tree")
        client.flush(60.0)
        with QueryEngine.from_settings(stack_settings) as engine:
            listed = {a.path: a for a in engine.list_artifacts("stack-art-1")}
            assert set(listed) == {
                *files,
                "notes.txt",
                "figures/square.svg",
                "tree/model.pkl",
                "tree/runstream_model.json",
            }
            assert all(a.uri.startswith("s3://runstream/") for a in listed.values())
            dst = tmp_path / "dst"
            engine.download_artifacts("stack-art-1", "inputs", dst)
            live = engine.get_run("stack-art-1").artifacts
        for path, local in files.items():
            assert sha256_of(dst / path) == sha256_of(local) == listed[path].sha256
        loaded = client.load_model("stack-art-1", "tree")
        assert (loaded.predict(features) == model.predict(features)).all()
    finally:
        client.close(10.0)
    replayed = replay(stack_settings).states["stack-art-1"]
    assert {p: (a.uri, a.size, a.sha256, a.media_type) for p, a in live.items()} == {
        p: (a.uri, a.size, a.sha256, a.media_type) for p, a in replayed.artifacts.items()
    }


def test_s3_stopped_during_the_uploads_loses_nothing(
    private_settings: Settings, private_s3: Any, tmp_path: Path
) -> None:
    files = make_files(tmp_path)
    client = Client(
        settings=private_settings,
        spill_dir=tmp_path / "spill",
        upload_policy=UploadPolicy(initial_s=0.2, max_s=1.0, deadline_s=240.0),
    )
    try:
        run = client.start_run(run_id="s3-down-1", capture_code=False)
        client.flush(30.0)
        private_s3.stop()
        run.log_artifact(files["inputs/a.json"].parent)
        run.log_text("written while S3 was down", "down.txt")
        run.log_model({"w": [1.0, 2.0]}, "m")
        time.sleep(12.0)  # the uploads fail (s3fs retries, then ours) meanwhile
        pending_while_down = client.uploader.pending()
        recorded_while_down = replay(private_settings).states["s3-down-1"].artifacts
        private_s3.start()
        client.flush(240.0)
        run.end()
        client.flush(30.0)
    finally:
        client.close(10.0)
    assert pending_while_down > 0
    assert recorded_while_down == {}  # no event before its object is stored
    with QueryEngine.from_settings(private_settings) as engine:
        listed = {a.path: a for a in engine.list_artifacts("s3-down-1")}
        assert set(listed) == {*files, "down.txt", "m/model.pkl", "m/runstream_model.json"}
        engine.download_artifacts("s3-down-1", None, tmp_path / "dst")
    for path, local in files.items():
        assert sha256_of(tmp_path / "dst" / path) == sha256_of(local)
    fs, _ = open_store(private_settings)
    recorded = replay(private_settings).states["s3-down-1"].artifacts
    assert set(recorded) == set(listed)
    for artifact in recorded.values():  # no event points at a missing or partial object
        fs.invalidate_cache()
        assert fs.info(fs._strip_protocol(artifact.uri))["size"] == artifact.size
