"""What ``pip install`` puts into site-packages: only ``runstream``, one subpackage per
distribution; the SDK alone installs only what logging needs, and a user's own
``schemas.py``, ``query.py`` or ``ui.py`` beside a script shadows nothing of Runstream's."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
UV = Path(sys.executable).parent / "uv"

PACKAGES = {
    "runstream": "apps",
    "runstream-core": "core",
    "runstream-contract": "contract",
    "runstream-sdk": "tracking",
    "runstream-processor": "processor",
    "runstream-compactor": "compactor",
    "runstream-query": "query",
    "runstream-ui": "ui",
    "runstream-mlflow": "mlflow",
}
"""Each distribution -> the one subpackage of ``runstream`` it installs."""

SDK_ALONE = {"runstream-core", "runstream-contract", "runstream-sdk"}
SDK_DEPENDENCIES = {"confluent-kafka", "fastavro", "fsspec"}

SHADOW = 'raise RuntimeError("the user\'s own {name}.py was imported")\n'


def uv(*args: str | Path, cwd: Path = REPO) -> str:
    result = subprocess.run(
        [str(UV), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every distribution of the workspace built as a wheel: name -> file."""
    out = tmp_path_factory.mktemp("wheels")
    uv("build", "--all-packages", "--wheel", "--quiet", "--out-dir", out)
    built = {}
    for wheel in out.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            name = next(
                line.split(":", 1)[1].strip()
                for line in archive.read(metadata).decode().splitlines()
                if line.startswith("Name:")
            )
        built[name] = wheel
    return built


def top_level(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        names = {name.split("/")[0] for name in archive.namelist()}
    return {name for name in names if not name.endswith(".dist-info")}


def subpackages(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {n.split("/")[1] for n in archive.namelist() if n.count("/") >= 2}


def test_every_distribution_is_built(wheels: dict[str, Path]) -> None:
    assert set(wheels) == set(PACKAGES)


def test_only_runstream_is_installed_at_the_top_level(wheels: dict[str, Path]) -> None:
    for name, wheel in wheels.items():
        assert top_level(wheel) == {"runstream"}, name


def test_each_distribution_holds_its_own_subpackage_of_a_namespace(
    wheels: dict[str, Path],
) -> None:
    for name, wheel in wheels.items():
        assert subpackages(wheel) == {PACKAGES[name]}, name
        with zipfile.ZipFile(wheel) as archive:
            assert "runstream/__init__.py" not in archive.namelist(), name
            assert f"runstream/{PACKAGES[name]}/py.typed" in archive.namelist(), name


def test_package_data_travels_in_the_wheels(wheels: dict[str, Path]) -> None:
    with zipfile.ZipFile(wheels["runstream-contract"]) as archive:
        schemas = [n for n in archive.namelist() if n.endswith(".avsc")]
    assert len(schemas) == len(list(REPO.glob("schemas/src/runstream/contract/avro/*.avsc")))
    with zipfile.ZipFile(wheels["runstream-ui"]) as archive:
        assert "runstream/ui/static/index.html" in archive.namelist()


def write_shadows(folder: Path) -> None:
    for name in ("schemas", "query", "ui"):
        (folder / f"{name}.py").write_text(SHADOW.format(name=name))


LOG_A_RUN = """
import sys
from runstream import tracking

with tracking.start_run(run_name="beside-schemas", collection="shadows") as run:
    tracking.log_params({"optimizer": {"lr": 0.1}})
    for step in range(500):
        tracking.log_metric("loss", 1.0 / (step + 1), step=step)
heavy = {"numpy", "pyarrow", "duckdb", "faust", "starlette", "botocore", "s3fs", "matplotlib"}
print(json.dumps({"run_id": run.run_id, "imported": sorted(
    m for m in sys.modules if m.split(".")[0] in heavy)}))
"""


@pytest.mark.slow
def test_the_sdk_alone_installs_only_what_logging_needs(
    wheels: dict[str, Path], tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    uv("venv", "--quiet", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    uv("pip", "install", "--quiet", "--python", python, *(wheels[n] for n in sorted(SDK_ALONE)))
    listed = json.loads(uv("pip", "list", "--format", "json", "--python", python))
    assert {p["name"] for p in listed} == SDK_ALONE | SDK_DEPENDENCIES

    project = tmp_path / "project"
    project.mkdir()
    write_shadows(project)
    script = (
        "import json\n"
        + LOG_A_RUN
        + (
            "try:\n"
            "    tracking.load_model(run.run_id, 'model')\n"
            "except tracking.ReadUnavailableError as error:\n"
            "    print(json.dumps({'read': str(error)}))\n"
        )
    )
    (project / "train.py").write_text(script)
    result = subprocess.run(
        [str(python), "train.py"],
        cwd=project,
        env={"RUNSTREAM_TRACKING_URI": f"file://{project / 'data'}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    logged, read = map(json.loads, result.stdout.splitlines())
    assert logged["imported"] == []
    assert "runstream-sdk[read]" in read["read"]
    assert list((project / "data" / "events").glob("*.avro"))


def test_a_script_beside_its_own_schemas_query_and_ui_logs_and_reads_a_run(
    tmp_path: Path,
) -> None:
    write_shadows(tmp_path)
    script = (
        "import json\n"
        + LOG_A_RUN
        + (
            "from runstream.core.settings import Settings\n"
            "from runstream.query import QueryEngine\n"
            "with QueryEngine.from_settings(Settings.resolve()) as engine:\n"
            "    got = engine.get_run(run.run_id)\n"
            "    history = engine.get_metric_history(run.run_id, 'loss')\n"
            "print(json.dumps({'name': got.name, 'params': dict(got.params),\n"
            "                  'points': history.num_rows,\n"
            "                  'last': history.column('value').to_pylist()[-1]}))\n"
        )
    )
    (tmp_path / "train.py").write_text(script)
    env = {"RUNSTREAM_TRACKING_URI": f"file://{tmp_path / 'data'}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "train.py"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    logged, read = map(json.loads, result.stdout.splitlines())
    assert read == {
        "name": "beside-schemas",
        "params": {"optimizer.lr": "0.1"},
        "points": 500,
        "last": 1.0 / 500,
    }
    cli = subprocess.run(
        [str(Path(sys.executable).parent / "runstream"), "runs"],
        cwd=tmp_path,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0, cli.stderr
    assert logged["run_id"][:8] in cli.stdout
