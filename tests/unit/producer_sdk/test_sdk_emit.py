"""``runstream emit``: good lines produced, bad lines reported by number, exit code."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from runstream.contract import (
    Codec,
    LogLine,
    MetricLogged,
    ParamLogged,
    RunEnded,
    RunStarted,
    decode_batch,
)
from runstream.core.locallog import read_log
from runstream.tracking.cli import emit

LINES = [
    {"run_id": "e1", "type": "run_started", "name": "etl", "tags": {"src": "airflow"}},
    {"run_id": "e1", "type": "metric", "key": "rows", "value": 10, "step": 1},
    {"run_id": "e1", "type": "metric", "key": "rows", "value": "ten"},
    {"run_id": "e1", "type": "param", "key": "batch", "value": 64},
    {"run_id": "../e1", "type": "param", "key": "batch", "value": 64},
    {"run_id": "e1", "type": "teleport"},
    {"run_id": "e1", "type": "metric", "key": "rows"},
    {"run_id": "e1", "type": "log", "message": "done", "level": "info", "extra": 1},
    {"run_id": "e1", "type": "log", "message": "done"},
    {"run_id": "e1", "type": "run_ended", "status": "FINISHED"},
]


def _decoded(folder: Path) -> list[object]:
    codec = Codec()
    return [
        e.payload for r in read_log(folder) for e in decode_batch(codec, r.value).logical_events()
    ]


def test_emit_reports_bad_lines_and_produces_good_ones(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    text = "\n".join(json.dumps(line) for line in LINES) + "\n\nnot json\n"
    source.write_text(text)
    result = CliRunner().invoke(emit, [str(source), "--tracking-uri", f"file://{tmp_path}/t"])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("line ")]
    assert [e.split(":")[0] for e in errors] == [
        "line 3",
        "line 5",
        "line 6",
        "line 7",
        "line 8",
        "line 12",
    ]
    assert "value" in errors[0] and "run_id" in errors[1] and "teleport" in errors[2]
    assert "5 events produced, 6 bad lines" in result.output
    payloads = _decoded(tmp_path / "t" / "events")
    kinds = sorted(type(p).__name__ for p in payloads)
    assert kinds == ["LogLine", "MetricLogged", "ParamLogged", "RunEnded", "RunStarted"]
    assert MetricLogged in {type(p) for p in payloads}
    started = next(p for p in payloads if isinstance(p, RunStarted))
    assert started.name == "etl" and started.tags == {"src": "airflow"}
    assert next(p for p in payloads if isinstance(p, ParamLogged)).value == "64"
    assert next(p for p in payloads if isinstance(p, LogLine)).message == "done"
    assert next(p for p in payloads if isinstance(p, RunEnded)).status == "FINISHED"


def test_emit_from_stdin_all_good_exits_zero(tmp_path: Path) -> None:
    text = json.dumps({"run_id": "e2", "type": "metric", "key": "x", "value": 1.5}) + "\n"
    result = CliRunner().invoke(emit, ["--tracking-uri", f"file://{tmp_path}/t"], input=text)
    assert result.exit_code == 0, result.output
    assert [type(p).__name__ for p in _decoded(tmp_path / "t" / "events")] == ["MetricLogged"]
