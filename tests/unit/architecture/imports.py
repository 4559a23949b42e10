"""The import graph of the installed ``runstream.*`` sources, read with ``ast`` (nothing is
imported): which module imports which, and whether at module level or inside a function."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SOURCE_ROOTS = sorted(REPO.glob("*/src"))


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` (a module, or a name in it) on ``line``; ``lazy`` when the
    import runs only when a function is called; ``typing`` when only under TYPE_CHECKING."""

    source: str
    target: str
    line: int
    lazy: bool
    typing: bool


def modules() -> dict[str, Path]:
    """Every module under ``runstream`` in the repository's source roots -> its file."""
    found: dict[str, Path] = {}
    for root in SOURCE_ROOTS:
        for path in sorted((root / "runstream").rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The module ``name`` refers to: itself, or the module holding the name it ends with."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _imports(tree: ast.Module) -> Iterator[tuple[ast.stmt, bool, bool]]:
    """Every import statement with (lazy, typing-only)."""

    def walk(
        body: list[ast.stmt], lazy: bool, typing: bool
    ) -> Iterator[tuple[ast.stmt, bool, bool]]:
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                yield node, lazy, typing
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from walk(node.body, True, typing)
            elif isinstance(node, ast.If):
                checking = "TYPE_CHECKING" in ast.unparse(node.test)
                yield from walk(node.body, lazy, typing or checking)
                yield from walk(node.orelse, lazy, typing)
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    inner = getattr(node, field, None)
                    if isinstance(inner, list):
                        stmts = [s for s in inner if isinstance(s, ast.stmt)]
                        stmts += [
                            s for h in inner if isinstance(h, ast.ExceptHandler) for s in h.body
                        ]
                        yield from walk(stmts, lazy, typing)

    yield from walk(tree.body, False, False)


def edges() -> list[Edge]:
    """Every import of one ``runstream`` module by another."""
    known = modules()
    found: list[Edge] = []
    for source, path in known.items():
        package = source if path.name == "__init__.py" else source.rpartition(".")[0]
        for node, lazy, typing in _imports(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                resolved = _resolve(target, known) if target.startswith("runstream.") else None
                if resolved and resolved != source:
                    found.append(Edge(source, resolved, node.lineno, lazy, typing))
    return found
