"""The UI's JSON endpoints over an embedded dataset: answers equal the query engine's and the
ground truth; bad parameters get 4xx answers naming the parameter."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from runstream.contract.limits import LOG_LEVELS
from runstream.core.settings import Settings
from runstream.tracking import Client
from runstream.ui import Backend, create_app
from runstream.ui.assets import static_dir
from tests.unit.ui.conftest import spike


def test_runs_filter_and_order(client: TestClient) -> None:
    body = client.get("/api/runs", params={"order_by": "params.lr ASC"}).json()
    assert [run["run_id"] for run in body["runs"]] == ["ui-2", "ui-1"]
    found = client.get("/api/runs", params={"filter": "status = 'FINISHED'"}).json()
    assert [run["run_id"] for run in found["runs"]] == ["ui-2"]
    assert found["runs"][0]["params"] == {"lr": "0.1"}


def test_one_run_with_latest_metrics_and_non_finite_values(client: TestClient) -> None:
    run = client.get("/api/runs/ui-1").json()
    assert (run["name"], run["collection"], run["status"]) == ("first", "exp", "RUNNING")
    assert run["tags"] == {"team": "a"} and run["params"] == {"lr": "0.5"}
    assert run["metrics"]["loss"]["step"] == 999 and run["metrics"]["loss"]["max"] == spike(333)
    assert run["metrics"]["odd"]["value"] == "NaN"


def test_history_is_exact_below_max_points_and_keeps_the_spike_when_downsampled(
    client: TestClient,
) -> None:
    full = client.get("/api/history", params={"run": "ui-1", "key": "loss", "max_points": 5000})
    body = full.json()
    assert body["points"] == 1000 and body["buckets_merged"] == 0
    assert body["step"] == list(range(1000))
    assert body["value"] == [spike(s) for s in range(1000)]
    small = client.get("/api/history", params={"run": "ui-1", "key": "loss", "max_points": 10})
    buckets = small.json()
    assert buckets["points"] == 10 and max(buckets["max"]) == spike(333)
    zoomed = client.get(
        "/api/history",
        params={"run": "ui-1", "key": "loss", "max_points": 10, "start_step": 330, "end_step": 339},
    ).json()
    assert zoomed["step"] == list(range(330, 340)) and zoomed["buckets_merged"] == 0


def test_compare_two_runs(client: TestClient) -> None:
    body = client.get(
        "/api/compare", params=[("run", "ui-1"), ("run", "ui-2"), ("key", "loss")]
    ).json()
    assert [s["run_id"] for s in body["series"]] == ["ui-1", "ui-2"]
    assert body["series"][1]["step"] == list(range(0, 1000, 10))


def test_logs_by_level(client: TestClient) -> None:
    every_line = client.get("/api/runs/ui-1/logs").json()
    assert [line["message"] for line in every_line["lines"]] == ["warming up", "gradient spike"]
    warn = client.get("/api/runs/ui-1/logs", params={"level": "warn"}).json()
    assert [(line["level"], line["metadata"]) for line in warn["lines"]] == [
        ("warn", {"step": "333"})
    ]


def test_errors_are_4xx_and_name_the_parameter(client: TestClient) -> None:
    cases = [
        ("/api/runs", {"filter": "params.lr >> 1"}, 400, "filter"),
        ("/api/runs", {"order_by": "nonsense ASCENDING"}, 400, "order_by"),
        ("/api/runs", {"sql": "SELECT 1"}, 400, "sql"),
        ("/api/runs", {"max_results": "0"}, 400, "max_results"),
        ("/api/history", {"run": "ui-1"}, 400, "key"),
        ("/api/history", {"run": "../x", "key": "loss"}, 400, "run"),
        ("/api/history", {"run": "ui-1", "key": "loss", "max_points": "abc"}, 400, "max_points"),
        (
            "/api/history",
            {"run": "ui-1", "key": "l", "start_step": "9", "end_step": "1"},
            400,
            "start_step",
        ),
        ("/api/runs/nope", {}, 404, "run"),
        ("/api/runs/ui-1/logs", {"level": "loud"}, 400, "level"),
        ("/api/compare", {"key": "loss"}, 400, "run"),
    ]
    for path, params, status, field in cases:
        response = client.get(path, params=params)
        assert (response.status_code, response.json()["field"]) == (status, field), (path, params)
        assert response.json()["message"]


def test_pages_assets_and_headers(client: TestClient) -> None:
    for path in ("/", "/runs/ui-1", "/compare"):
        page = client.get(path)
        assert page.status_code == 200 and '<main id="view">' in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/assets/app.js").status_code == 200
    assert client.get("/", headers={"host": "evil.example"}).status_code == 400


def test_token_is_required_when_set(ui_settings: Settings) -> None:
    app = create_app(Backend.from_settings(ui_settings), token="s3cret")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        denied = client.get("/api/runs")
        assert denied.status_code == 401 and denied.json()["field"] == "token"
        assert client.get("/api/runs", headers={"authorization": "Bearer wrong"}).status_code == 401
        ok = client.get("/api/runs", headers={"authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert client.get("/api/runs?token=s3cret").status_code == 401  # not on the API
        page = client.get("/compare?token=s3cret&run=ui-1", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/compare?run=ui-1"
        assert client.get("/api/runs").status_code == 200  # the cookie set by the redirect


@pytest.mark.parametrize("depth", [2_000, 51])
def test_a_filter_nested_too_deep_is_a_400_naming_the_filter(
    client: TestClient, depth: int
) -> None:
    text = "(" * depth + "status = 'FINISHED'" + ")" * depth
    response = client.get("/api/runs", params={"filter": text})
    assert response.status_code == 400
    assert response.json()["field"] == "filter"
    assert "nested more than 50" in response.json()["message"]
    nested = "(" * 50 + "status = 'FINISHED'" + ")" * 50
    found = client.get("/api/runs", params={"filter": nested}).json()
    assert [run["run_id"] for run in found["runs"]] == ["ui-2"]


def test_negative_and_extreme_steps_chart_in_the_ui(ui_settings: Settings) -> None:
    writer = Client(settings=ui_settings)
    run = writer.start_run(run_id="ui-neg", capture_code=False)
    steps = [-(2**63), -1, *range(0, 5000, 3), 2**63 - 1]
    for step in steps:
        run.log_metric("loss", 1.0, step=step)
    run.end()
    writer.close()
    app = create_app(Backend.from_settings(ui_settings))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for max_points in (10, 5000):
            response = client.get(
                "/api/history", params={"run": "ui-neg", "key": "loss", "max_points": max_points}
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["step"][-1] == 2**63 - 1 and min(body["step"]) <= -1


def test_the_log_level_filter_offers_the_contracts_levels(client: TestClient) -> None:
    source = (Path(__file__).parents[3] / "ui/frontend/src/run.js").read_text()
    match = re.search(r"const LEVELS = (\[[^\]]*\]);", source)
    assert match is not None and tuple(json.loads(match.group(1))) == LOG_LEVELS
    bundle = "".join(p.read_text() for p in static_dir().rglob("*.js"))
    assert '"fatal"' in bundle  # the served bundle is built from that source
    assert client.get("/api/runs/ui-1/logs", params={"level": "fatal"}).status_code == 200
