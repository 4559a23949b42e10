"""History read from the tail (points not compacted yet) equals a reference computed from what
was logged: several keys interleaved, two producers, steps out of order and repeated, records
read over two refreshes; each key's points once, ordered by (step, timestamp, producer,
sequence)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runstream.core.settings import Settings
from runstream.query import QueryEngine
from runstream.tracking import Client

KEYS = ("loss", "acc", "lr")
T0 = 1_700_000_000_000
calls = st.lists(
    st.tuples(
        st.integers(0, 1),  # which producer
        st.sampled_from(KEYS),
        st.integers(-5, 40),  # step
        st.integers(0, 3),  # timestamp offset (ms): ties on (step, timestamp) happen
        st.floats(allow_nan=False, width=32),
    ),
    min_size=1,
    max_size=120,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(calls=calls, cut=st.integers(0, 120))
def test_tail_history_equals_the_logged_points(
    tmp_path_factory: Any, calls: list[tuple[int, str, int, int, float]], cut: int
) -> None:
    root = tmp_path_factory.mktemp("tail")
    tracking = Settings.resolve(f"file://{root / 'tracking'}", environ={})
    clients = [Client(settings=tracking, spill_dir=root / f"spill{i}") for i in range(2)]
    runs = [client.start_run(run_id="mixed", capture_code=False) for client in clients]
    producers = [client.batcher.producer.id for client in clients]
    want: dict[str, list[tuple[int, int, str, int, float]]] = {key: [] for key in KEYS}
    try:
        with QueryEngine.from_settings(tracking) as engine:
            for index, (who, key, step, ms, value) in enumerate(calls):
                runs[who].log_metric(key, value, step=step, timestamp=T0 + ms)
                want[key].append((step, T0 + ms, producers[who], index, value))
                if index == cut:  # a read in the middle: the points arrive over two refreshes
                    for client in clients:
                        client.flush(10.0)
                    engine.get_metric_history("mixed", key)
            for client in clients:
                client.flush(10.0)
            for key in KEYS:
                got = engine.get_metric_history("mixed", key)
                rows = zip(
                    got["step"].to_pylist(),
                    got["timestamp"].to_pylist(),
                    got["value"].to_pylist(),
                    strict=True,
                )
                expected = [(step, ts, value) for step, ts, _, _, value in sorted(want[key])]
                assert list(rows) == expected, key
    finally:
        for client in clients:
            client.close(5.0)
