"""The UI's /metrics, /healthz and /readyz: open without the token, requests counted by route
template (never by run id), parsed with prometheus_client's own text parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from runstream.core.settings import Settings
from runstream.ui import Backend, create_app


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_requests_are_counted_by_route_template(client: TestClient) -> None:
    assert client.get("/api/runs/ui-1").status_code == 200
    assert client.get("/api/runs/ui-2").status_code == 200
    assert client.get("/api/runs/no-such-run").status_code == 404
    samples = _samples(client.get("/metrics").text)
    route = "/api/runs/{run_id}"
    assert samples[("runstream_ui_requests_total", (("route", route), ("status", "200")))] == 2
    assert samples[("runstream_ui_requests_total", (("route", route), ("status", "404")))] == 1
    assert samples[("runstream_ui_request_seconds_count", (("route", route),))] == 3
    assert not any("ui-1" in str(labels) for _, labels in samples)


def test_probes_and_metrics_need_no_token(ui_settings: Settings) -> None:
    app = create_app(Backend.from_settings(ui_settings), token="s3cret")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/api/info").status_code == 401
        assert client.get("/healthz").text == "ok\n"
        assert client.get("/readyz").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/metrics/../api/info").status_code == 401
