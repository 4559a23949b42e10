"""The committed build of the front end is the build of the committed sources, and it loads
nothing from another origin (the UI works offline)."""

from __future__ import annotations

import re

from runstream.ui.assets import STATIC_DIR, built_hash, source_hash, static_dir


def test_build_matches_sources() -> None:
    assert built_hash() == source_hash(), (
        "ui/static is stale: run `cd ui/frontend && npm ci && npm run build` and commit ui/static"
    )


def test_pages_load_only_local_assets() -> None:
    index = (static_dir() / "index.html").read_text(encoding="utf-8")
    references = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', index)
    assert sorted(references) == ["/assets/app.js", "/assets/style.css"]
    assert "//" not in index
    for ref in references:
        assert (STATIC_DIR / ref.removeprefix("/")).is_file()
    css = (STATIC_DIR / "assets" / "style.css").read_text(encoding="utf-8")
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", css)
    script = (STATIC_DIR / "assets" / "app.js").read_text(encoding="utf-8")
    assert not re.search(r"""import\s*\(?\s*["'](https?:)?//""", script)
