"""Install benchmark: what a training image pays for tracking. Side by side in one run, each
in a fresh virtual environment: the SDK alone (``runstream-sdk``), the whole of Runstream
(``runstream``), MLflow's light client (``mlflow-skinny``) and W&B's SDK (``wandb``); with
``--before REV``, also Runstream's single distribution as it was at that git revision.

Prints, per install, the size of what it adds to site-packages and the median wall time of
``import <module>`` in a fresh interpreter (minus the interpreter's own start), each as a
ratio to the SDK alone.

Usage: python benchmarks/bench_install.py [--runs 7] [--before c892398] [--skip wandb]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UV = Path(sys.executable).parent / "uv"


@dataclass(frozen=True)
class Install:
    """One environment to measure: what to install, and the module a user imports."""

    label: str
    requirements: list[str]
    module: str


def run(*args: str | Path, cwd: Path = REPO) -> str:
    result = subprocess.run(list(map(str, args)), cwd=cwd, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{' '.join(map(str, args))} failed:\n{result.stderr}")
    return result.stdout


def site_packages_bytes(venv: Path) -> int:
    (site,) = venv.glob("lib/python*/site-packages")
    return sum(p.stat().st_size for p in site.rglob("*") if p.is_file() and not p.is_symlink())


def median_wall_s(python: Path, code: str, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        run(python, "-I", "-c", code)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def build_wheels(out: Path) -> dict[str, str]:
    run(UV, "build", "--all-packages", "--wheel", "--quiet", "--out-dir", out)
    wheels = {}
    for wheel in out.glob("*.whl"):
        wheels[wheel.name.split("-")[0].replace("_", "-")] = str(wheel)
    return wheels


def before(revision: str, work: Path) -> str:
    """The repository at ``revision`` unpacked into ``work`` (an installable folder)."""
    folder = work / f"runstream-{revision}"
    folder.mkdir()
    archive = subprocess.run(
        ["git", "archive", revision], cwd=REPO, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return str(folder)


def measure(install: Install, work: Path, runs: int) -> tuple[int, float]:
    venv = work / install.label.replace(" ", "-").replace("/", "-")
    run(UV, "venv", "--quiet", "--python", sys.executable, venv)
    empty = site_packages_bytes(venv)
    python = venv / "bin" / "python"
    run(UV, "pip", "install", "--quiet", "--python", python, *install.requirements)
    size = site_packages_bytes(venv) - empty
    median_wall_s(python, f"import {install.module}", 2)  # warm the page cache and .pyc files
    start = median_wall_s(python, "pass", runs)
    return size, median_wall_s(python, f"import {install.module}", runs) - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters per import")
    parser.add_argument("--before", help="also measure the single distribution at this revision")
    parser.add_argument("--skip", nargs="*", default=[], help="labels not to measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runstream-bench-install-") as tmp:
        work = Path(tmp)
        (work / "wheels").mkdir()
        wheels = build_wheels(work / "wheels")
        sdk = [wheels[n] for n in ("runstream-core", "runstream-contract", "runstream-sdk")]
        installs = [
            Install("runstream-sdk", sdk, "runstream.tracking"),
            Install("runstream (all)", list(wheels.values()), "runstream.tracking"),
            Install("mlflow-skinny", ["mlflow-skinny"], "mlflow"),
            Install("wandb", ["wandb"], "wandb"),
        ]
        if args.before:
            old = before(args.before, work)
            installs.insert(2, Install(f"runstream@{args.before}", [old], "producer_sdk"))
        rows = []
        for install in installs:
            if install.label in args.skip:
                continue
            size, seconds = measure(install, work, args.runs)
            rows.append((install.label, install.module, size, seconds))
            print(f"measured {install.label}", file=sys.stderr)
    base_size, base_time = rows[0][2], rows[0][3]
    print(
        f"{'install':24} {'import':20} {'size MB':>9} {'x sdk':>7} {'import ms':>10} {'x sdk':>7}"
    )
    for label, module, size, seconds in rows:
        print(
            f"{label:24} {module:20} {size / 1e6:9.1f} {size / base_size:7.2f} "
            f"{seconds * 1e3:10.0f} {seconds / base_time:7.2f}"
        )


if __name__ == "__main__":
    main()
