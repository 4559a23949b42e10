"""Issue 18: run search answers from an index updated run by run between searches. Every
answer is compared with a computation in plain Python over the truth the test keeps (never
the engine's own states), after rounds of changes logged between searches: params and metrics
that change, runs that end, are deleted, restored, renamed, new runs, and a wide run (more keys
than the index holds per run) whose metric moves. An index left stale by any of them fails."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runstream.contract import EventBatch, MetricColumns, Producer
from runstream.contract.events import (
    Event,
    ParamLogged,
    RunDeleted,
    RunEnded,
    RunRestored,
    RunStarted,
    RunUpdated,
    TagSet,
)
from runstream.core.settings import Settings
from runstream.query import QueryEngine
from runstream.query.index import WIDE_KEYS
from tests.unit.embedded.test_process import write_log

RUNS = 300
ROUNDS = 4
PRODUCER = Producer("test-producer", "h", 1)
T0 = 1_700_000_000_000_000


@dataclass
class Truth:
    """What the test logged for one run (latest values by event order)."""

    run_id: str
    start_us: int
    name: str
    status: str = "RUNNING"
    deleted: bool = False
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, tuple[int, float]] = field(default_factory=dict)  # key -> (step, value)

    def metric(self, key: str) -> float | None:
        return self.metrics[key][1] if key in self.metrics else None

    def number(self, key: str) -> float | None:
        try:
            return float(self.params[key])
        except (KeyError, ValueError):
            return None


class Logger:
    """Logs batches to the local log (one new file per round) and keeps the truth."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.truth: dict[str, Truth] = {}
        self.clock = itertools.count(T0 + 10_000_000, 1000)
        self.sequence = itertools.count(0, 1_000_000)
        self.files = itertools.count()
        self.pending: list[EventBatch] = []

    def batch(
        self, run_id: str, events: list[Event], metrics: dict[str, tuple[int, float]]
    ) -> None:
        columns = MetricColumns(
            list(metrics),
            list(range(len(metrics))),
            [step for step, _ in metrics.values()],
            [value for _, value in metrics.values()],
            [1] * len(metrics),
        )
        self.pending.append(
            EventBatch(run_id, PRODUCER, next(self.sequence), tuple(events), columns)
        )
        truth = self.truth[run_id]
        for key, (step, value) in metrics.items():
            if key not in truth.metrics or step > truth.metrics[key][0]:
                truth.metrics[key] = (step, value)

    def start(
        self, run_id: str, start_us: int, params: dict[str, str], metrics: dict[str, float]
    ) -> None:
        self.truth[run_id] = Truth(run_id, start_us, f"run-{run_id}")
        self.truth[run_id].params.update(params)
        events = [Event(start_us, RunStarted(start_us, f"run-{run_id}", "c"))]
        events += [Event(start_us, ParamLogged(k, v)) for k, v in params.items()]
        self.batch(run_id, events, {k: (0, v) for k, v in metrics.items()})

    def event(self, run_id: str, payload: object) -> None:
        truth = self.truth[run_id]
        if isinstance(payload, ParamLogged):
            truth.params[payload.key] = payload.value
        elif isinstance(payload, TagSet):
            truth.tags[payload.key] = payload.value
        elif isinstance(payload, RunEnded):
            truth.status = payload.status
        elif isinstance(payload, RunDeleted):
            truth.deleted = True
        elif isinstance(payload, RunRestored):
            truth.deleted = False
        elif isinstance(payload, RunUpdated):
            assert payload.name is not None
            truth.name = payload.name
        now = next(self.clock)
        self.batch(run_id, [Event(now, payload)], {})  # type: ignore[arg-type]

    def flush(self) -> None:
        write_log(self.settings, self.pending, name=f"round-{next(self.files)}")
        self.pending = []


Check = Callable[[Truth], bool]
Key = Callable[[Truth], tuple[object, ...]]


def _desc(value: float | None) -> tuple[int, float]:
    return (1, 0.0) if value is None else (0, -value)


def _asc(value: float | None) -> tuple[int, float]:
    return (1, 0.0) if value is None else (0, value)


def _default(t: Truth) -> tuple[object, ...]:
    return (-t.start_us, t.run_id)


SEARCHES: list[tuple[str, list[str], Check, Key]] = [
    (
        "params.p0 = 'v3' AND metrics.m0 > 0.5",
        [],
        lambda t: t.params.get("p0") == "v3" and (t.metric("m0") or 0) > 0.5,
        _default,
    ),
    (
        "status = 'FAILED' OR params.p1 IN ('v1', 'v2')",
        ["metrics.m1 DESC"],
        lambda t: t.status == "FAILED" or t.params.get("p1") in ("v1", "v2"),
        lambda t: (_desc(t.metric("m1")), *_default(t)),
    ),
    (
        "params.lr >= 0.5 AND tags.team = 'a'",
        ["params.lr ASC"],
        lambda t: (t.number("lr") or -1) >= 0.5 and t.tags.get("team") == "a",
        lambda t: (_asc(t.number("lr")), *_default(t)),
    ),
    (
        "metrics.m2 < 0.3 AND name LIKE 'run-%'",
        ["metrics.m2 ASC"],
        lambda t: (
            t.metric("m2") is not None and (t.metric("m2") or 0) < 0.3 and t.name.startswith("run-")
        ),
        lambda t: (_asc(t.metric("m2")), *_default(t)),
    ),
    ("", [], lambda t: True, _default),
]


def expected(logger: Logger, check: Check, key: Key, deleted: bool | None, limit: int) -> list[str]:
    runs = [
        t for t in logger.truth.values() if (deleted is None or t.deleted == deleted) and check(t)
    ]
    return [t.run_id for t in sorted(runs, key=key)][:limit]


def assert_searches_match(engine: QueryEngine, logger: Logger) -> int:
    compared = 0
    for text, order, check, key in SEARCHES:
        for deleted in (False, True, None):
            for limit in (7, 1000):
                got = engine.search_runs(text, order, limit, deleted=deleted)
                want = expected(logger, check, key, deleted, limit)
                assert [r.run_id for r in got] == want, (text, order, deleted, limit)
                for run in got:  # the objects returned are the states as of now
                    truth = logger.truth[run.run_id]
                    assert (run.status, run.name) == (truth.status, truth.name)
                    assert run.params == truth.params
                    assert {k: m.value for k, m in run.metrics.items()} == {
                        k: v for k, (_, v) in truth.metrics.items()
                    }
                compared += len(want)
    return compared


def change_round(logger: Logger, rng: random.Random, round_number: int) -> None:
    ids = sorted(logger.truth)
    for run_id in rng.sample(ids, 40):
        choice = rng.randrange(8)
        truth = logger.truth[run_id]
        if choice == 0:
            logger.event(run_id, ParamLogged("p0", f"v{rng.randrange(10)}"))
        elif choice == 1:
            step = max(step for step, _ in truth.metrics.values()) + 1 if truth.metrics else 1
            metrics = {f"m{rng.randrange(3)}": (step, rng.random())}
            logger.batch(run_id, [], metrics)
        elif choice == 2:
            logger.event(run_id, RunEnded(rng.choice(["FINISHED", "FAILED", "KILLED"]), 1))
        elif choice == 3:
            logger.event(run_id, RunDeleted("test") if not truth.deleted else RunRestored())
        elif choice == 4:
            logger.event(run_id, TagSet("team", rng.choice("ab")))
        elif choice == 5:
            logger.event(run_id, ParamLogged("lr", rng.choice(["0.1", "0.5", "0.9", "n/a"])))
        elif choice == 6:
            logger.event(run_id, RunUpdated(name=rng.choice([f"run-{run_id}", f"other-{run_id}"])))
        else:
            logger.event(run_id, ParamLogged("p1", f"v{rng.randrange(4)}"))
    for n in range(5):  # new runs, some started before the others (the order moves)
        run_id = f"new-{round_number}-{n}"
        params = {f"p{k}": f"v{rng.randrange(10)}" for k in range(3)}
        metrics = {f"m{k}": rng.random() for k in range(3)}
        logger.start(run_id, T0 + rng.randrange(RUNS * 1000), params, metrics)
    logger.flush()


@pytest.fixture
def logger(tmp_path: Path) -> Logger:
    settings = Settings.resolve(f"file://{tmp_path / 'log'}", str(tmp_path / "store"), environ={})
    logger = Logger(settings)
    rng = random.Random(18)
    for n in range(RUNS):
        params = {f"p{k}": f"v{rng.randrange(10)}" for k in range(10)}
        params["lr"] = rng.choice(["0.1", "0.5", "0.9", "n/a"])
        metrics = {f"m{k}": rng.random() for k in range(5)}
        logger.start(f"run{n:04d}", T0 + n * 1000, params, metrics)
    logger.flush()
    return logger


def test_search_equals_plain_python_across_rounds_of_changes(logger: Logger) -> None:
    rng = random.Random(7)
    with QueryEngine.from_settings(logger.settings) as engine:
        compared = assert_searches_match(engine, logger)
        for round_number in range(ROUNDS):
            change_round(logger, rng, round_number)
            compared += assert_searches_match(engine, logger)
    assert compared > 3_000  # the searches returned runs to compare, not empty lists


def test_a_change_between_two_searches_is_seen_by_the_second(logger: Logger) -> None:
    with QueryEngine.from_settings(logger.settings) as engine:
        target = "run0005"
        assert target not in [r.run_id for r in engine.search_runs("params.p0 = 'zz'")]
        logger.event(target, ParamLogged("p0", "zz"))
        logger.flush()
        assert [r.run_id for r in engine.search_runs("params.p0 = 'zz'")] == [target]
        logger.event(target, RunDeleted("gone"))
        logger.flush()
        assert engine.search_runs("params.p0 = 'zz'") == []
        assert [r.run_id for r in engine.search_runs("params.p0 = 'zz'", deleted=True)] == [target]
        logger.event(target, RunRestored())
        logger.flush()
        assert [r.run_id for r in engine.search_runs("params.p0 = 'zz'")] == [target]


def test_a_wide_run_is_searched_by_its_current_values(logger: Logger) -> None:
    keys = {f"w{k:05d}": (0, float(k)) for k in range(WIDE_KEYS + 10)}
    logger.truth["wide"] = Truth("wide", T0 - 1, "run-wide")
    logger.batch("wide", [Event(T0 - 1, RunStarted(T0 - 1, "run-wide", "c"))], keys)
    logger.flush()
    with QueryEngine.from_settings(logger.settings) as engine:
        assert [r.run_id for r in engine.search_runs("metrics.w00007 = 7")] == ["wide"]
        assert engine.search_runs("metrics.w00007 > 7") == []
        logger.batch("wide", [], {"w00007": (1, 100.0)})
        logger.flush()
        assert [r.run_id for r in engine.search_runs("metrics.w00007 > 7")] == ["wide"]
        ordered = engine.search_runs(order_by=["metrics.w00003 DESC"], max_results=2)
        assert [r.run_id for r in ordered] == ["wide", "run0299"]


def test_the_index_rebuilds_a_run_whose_state_is_another_object() -> None:
    """A tail that replaces a state (say, from a store snapshot) without a record read: the
    index sees the new object with nothing noted by the log."""
    from runstream.contract.state import RunState, fold
    from runstream.query.filters import compile_filter, compile_order
    from runstream.query.index import RunIndex

    start = Event(T0, RunStarted(T0, "a", "c"))
    states = fold([EventBatch("a", PRODUCER, 0, (start, Event(T0, ParamLogged("lr", "1"))))])
    index = RunIndex(lease_us=10**12)

    def search(text: str, states: dict[str, RunState]) -> list[str]:
        where, order = compile_filter(text), compile_order(())
        return index.search(states, (), where, order, 10, False, T0)

    try:
        assert search("params.lr = '1'", states) == ["a"]
        replaced = states["a"].copy()
        replaced.params["lr"] = replaced.params["lr"]._replace(value="2")
        assert search("params.lr = '1'", {"a": replaced}) == []
        assert search("params.lr = '2'", {"a": replaced}) == ["a"]
        assert search("params.lr = '2'", {}) == []  # a run gone
    finally:
        index.close()
