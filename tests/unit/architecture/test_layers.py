"""The layers of docs/architecture.md hold: core -> contract -> components -> apps, no import
pointing up, components apart from each other, and no cycle between files."""

from __future__ import annotations

import graphlib

import pytest

from tests.unit.architecture.imports import Edge, edges, modules

LAYERS = {
    "core": 0,
    "contract": 1,
    "tracking": 2,
    "processor": 2,
    "compactor": 2,
    "query": 2,
    "apps": 3,
    "ui": 3,
    "mlflow": 3,
}
"""Every package of the namespace and its layer (the UI composes the query component with the
event log, as an app does)."""

ALLOWED_ACROSS = {("tracking", "query")}
"""Component -> component imports allowed, and only inside a function (the SDK's reads)."""


def package(module: str) -> str:
    return module.split(".")[1]


def test_every_package_has_a_layer() -> None:
    assert {package(module) for module in modules() if module != "runstream"} == set(LAYERS)


def upward(found: list[Edge]) -> list[str]:
    return [
        f"{e.source}:{e.line} imports {e.target}"
        for e in found
        if LAYERS[package(e.target)] > LAYERS[package(e.source)]
    ]


def across(found: list[Edge]) -> list[str]:
    bad = []
    for e in found:
        source, target = package(e.source), package(e.target)
        same_layer = LAYERS[source] == LAYERS[target] == 2 and source != target
        if same_layer and not ((source, target) in ALLOWED_ACROSS and (e.lazy or e.typing)):
            bad.append(f"{e.source}:{e.line} imports {e.target}")
    return bad


def cycles(found: list[Edge]) -> list[str]:
    graph: dict[str, set[str]] = {}
    for e in found:
        graph.setdefault(e.source, set()).add(e.target)
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        return [" -> ".join(error.args[1])]
    return []


def test_no_import_points_up() -> None:
    assert upward(edges()) == []


def test_components_import_only_core_and_contract() -> None:
    assert across(edges()) == []


def test_no_cycle_between_files() -> None:
    """Every import counts, those under TYPE_CHECKING and inside functions too."""
    assert cycles(edges()) == []


@pytest.mark.parametrize(
    ("edge", "check"),
    [
        (Edge("runstream.core.settings", "runstream.contract.codec", 1, False, False), upward),
        (Edge("runstream.contract.state", "runstream.query.engine", 1, True, False), upward),
        (Edge("runstream.compactor.worker", "runstream.query.store", 1, False, False), across),
        (Edge("runstream.tracking.reads", "runstream.query.engine", 1, False, False), across),
        (Edge("runstream.query.tail", "runstream.tracking.run", 1, True, False), across),
    ],
)
def test_the_checks_catch_a_bad_import(edge: Edge, check: object) -> None:
    assert callable(check)
    assert check([*edges(), edge]) != []


def test_the_cycle_check_catches_a_cycle() -> None:
    back = Edge("runstream.tracking.run", "runstream.tracking.client", 1, False, True)
    assert cycles([*edges(), back]) != []


def test_the_sdk_reads_the_query_component_lazily() -> None:
    found = [e for e in edges() if package(e.source) == "tracking" and package(e.target) == "query"]
    assert found, "the SDK's reads go through the query component"
    assert all(e.lazy or e.typing for e in found)
