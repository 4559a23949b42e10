"""Who is writing (the producer identity) and what code runs (captured at run start)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import secrets
import shlex
import socket
import subprocess
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from runstream.contract.events import Producer

logger = logging.getLogger(__name__)

_GIT_TIMEOUT = 5.0


def new_producer(environ: Mapping[str, str] | None = None) -> Producer:
    """A fresh producer identity for this process: a random 64-bit id (16 hex digits), the
    host, the pid, and RANK / LOCAL_RANK / WORLD_SIZE / RUNSTREAM_WORKER from the environment;
    without RANK the rank is TensorFlow's task index (``TF_CONFIG``), and without
    RUNSTREAM_WORKER the worker is ``<task type>:<task index>``. Unparseable rank variables are
    logged and left out."""
    env = os.environ if environ is None else environ
    task_type, task_index = tf_task(env)
    rank = _int_env(env, "RANK")
    return Producer(
        id=secrets.token_hex(8),
        host=socket.gethostname(),
        pid=os.getpid(),
        rank=task_index if rank is None else rank,
        local_rank=_int_env(env, "LOCAL_RANK"),
        world_size=_int_env(env, "WORLD_SIZE"),
        worker=env.get("RUNSTREAM_WORKER")
        or (f"{task_type}:{task_index}" if task_type is not None else None),
    )


def tf_task(env: Mapping[str, str]) -> tuple[str | None, int | None]:
    """TensorFlow's task of this process: ``TF_CONFIG``'s ``task.type`` and ``task.index``
    (both None when unset; a malformed value is logged and ignored)."""
    raw = env.get("TF_CONFIG")
    if not raw:
        return None, None
    try:
        task = json.loads(raw).get("task") or {}
        index = task.get("index")
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError(f"task.index {index!r} is not an int")
        return str(task.get("type") or "worker"), index
    except (ValueError, AttributeError) as error:
        logger.warning("ignoring TF_CONFIG=%r: %s", raw[:200], error)
        return None, None


def _int_env(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        logger.warning("ignoring %s=%r: not an integer", name, raw)
        return None


@dataclass(frozen=True)
class CodeVersion:
    """The code and environment of a run, as captured at its start."""

    source_file: str | None
    command: str
    git_commit: str | None
    git_dirty: bool | None
    python_version: str
    packages: dict[str, str]


def capture_code_version() -> CodeVersion:
    """Capture the main source file, the command line, the git commit and dirty flag (when
    the source is in a git work tree), the Python version and the versions of the imported
    top-level packages. Never raises: what cannot be found is left out."""
    main = sys.modules.get("__main__")
    source = getattr(main, "__file__", None)
    source_file = str(Path(source).resolve()) if source else None
    folder = Path(source_file).parent if source_file else Path.cwd()
    commit, dirty = _git_state(folder)
    return CodeVersion(
        source_file=source_file,
        command=shlex.join([sys.executable, *sys.argv]),
        git_commit=commit,
        git_dirty=dirty,
        python_version=platform.python_version(),
        packages=_imported_package_versions(),
    )


def _git_state(folder: Path) -> tuple[str | None, bool | None]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT,
            check=False,
        )
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as error:
        logger.debug("no git state for %s: %s", folder, error)
        return None, None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return commit.stdout.strip() or None, dirty


def _imported_package_versions() -> dict[str, str]:
    """``__version__`` of every imported non-stdlib top-level module that has one, plus
    Runstream's
    (cheap: no scan of installed distributions, which costs ~0.2 s)."""
    versions: dict[str, str] = {}
    with warnings.catch_warnings():  # some packages deprecate __version__ (click)
        warnings.simplefilter("ignore", DeprecationWarning)
        for name, module in list(sys.modules.items()):
            if "." in name or name.startswith("_") or name in sys.stdlib_module_names:
                continue
            version = getattr(module, "__version__", None)
            if isinstance(version, str) and version:
                versions[name] = version[:100]
    with contextlib.suppress(metadata.PackageNotFoundError):
        versions["runstream"] = metadata.version("runstream")
    return dict(sorted(versions.items()))


def source_name(environ: Mapping[str, str] | None = None) -> str:
    """The file name of what runs: the notebook (``JPY_SESSION_NAME``, set by Jupyter) or
    the main script; ``python`` for an interactive interpreter. Never raises."""
    env = os.environ if environ is None else environ
    notebook = env.get("JPY_SESSION_NAME")
    if notebook:
        return Path(notebook).name[:250]
    source = getattr(sys.modules.get("__main__"), "__file__", None)
    return Path(source).name[:250] if source else "python"
