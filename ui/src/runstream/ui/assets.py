"""Where the built front end lives, and the check that it is there.

The front end's sources are in the repository's ``ui/frontend`` (npm, pinned by
package-lock.json); its build (``npm ci && npm run build`` there) writes this package's
``static`` folder, which is committed, so an install from a fresh clone needs no Node.
``static/build.json`` records a hash of the sources it was built from; a unit test recomputes
it, so sources changed without a rebuild fail the suite.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from runstream.ui.exceptions import AssetsMissingError

PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_DIR = PACKAGE_DIR / "static"
FRONTEND_DIR = PACKAGE_DIR.parents[2] / "frontend"
"""The front end's sources in a checkout (ui/frontend; not part of an installed wheel)."""
SOURCE_FILES = ("package.json", "package-lock.json", "build.mjs")
BUILD_INFO = "build.json"


def static_dir(folder: Path = STATIC_DIR) -> Path:
    """The folder of the built front end.

    Raises:
        AssetsMissingError: its index.html is missing.
    """
    if not (folder / "index.html").is_file():
        raise AssetsMissingError(
            f"{folder / 'index.html'} is missing: build the front end with "
            f"`cd {FRONTEND_DIR} && npm ci && npm run build`"
        )
    return folder


def source_hash(frontend: Path = FRONTEND_DIR) -> str:
    """SHA-256 over the front end's sources (src/**, package.json, the lock, build.mjs),
    the way ``build.mjs`` computes it."""
    digest = hashlib.sha256()
    files = [frontend / name for name in SOURCE_FILES]
    files += sorted(
        (p for p in (frontend / "src").rglob("*") if p.is_file()),
        key=lambda p: p.relative_to(frontend).as_posix(),
    )
    for path in files:
        digest.update(path.relative_to(frontend).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def built_hash(folder: Path = STATIC_DIR) -> str | None:
    """The source hash recorded by the last build, or None if there is no record."""
    path = folder / BUILD_INFO
    if not path.is_file():
        return None
    value = json.loads(path.read_text(encoding="utf-8")).get("source_sha256")
    return value if isinstance(value, str) else None
