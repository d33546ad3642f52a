"""Golden replays: ``ewarn detect`` over recorded telemetry against expected alert events.

The files in ``expected/`` are specifications: read them before accepting a change.
Regenerate with ``EWARN_UPDATE_GOLDEN=1 .venv/bin/pytest tests/scenarios``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pipeline.cli import app

HERE = Path(__file__).parent
REGISTRY = HERE / "registry.yaml"
NOW = "2025-11-28T12:00:00Z"  # wall clock for validation: after all scenario data
UPDATE = os.environ.get("EWARN_UPDATE_GOLDEN") == "1"


def detect(name: str, tmp_path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    alerts, dead = tmp_path / "alerts.jsonl", tmp_path / "dl.jsonl"
    args = [
        "detect",
        "--registry",
        str(REGISTRY),
        "--input",
        str(HERE / f"{name}.jsonl"),
        "--alerts",
        str(alerts),
        "--deadletter",
        str(dead),
        "--now",
        NOW,
    ]
    disp = HERE / f"{name}.dispositions.jsonl"
    if disp.exists():
        args += ["--dispositions", str(disp)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in alerts.read_text().splitlines()]
    for e in events:
        assert e["emitted_at"] is not None
        del e["emitted_at"]
    return events, [json.loads(line) for line in dead.read_text().splitlines()]


def golden(name: str, events: list[dict[str, Any]]) -> None:
    path = HERE / "expected" / f"{name}.jsonl"
    text = "".join(json.dumps(e, sort_keys=True) + "\n" for e in events)
    if UPDATE:
        path.write_text(text)
    assert path.exists(), f"no golden file {path}; run with EWARN_UPDATE_GOLDEN=1"
    expected = [json.loads(line) for line in path.read_text().splitlines()]
    assert events == expected


def of(
    events: list[dict[str, Any]],
    kind: str | None = None,
    event: str | None = None,
    sensor: str | None = None,
) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if (kind is None or e["kind"] == kind)
        and (event is None or e["event"] == event)
        and (sensor is None or e["sensor_id"] == sensor)
    ]


def test_methane_ramp(tmp_path: Path) -> None:
    events, dead = detect("methane_ramp", tmp_path)
    golden("methane_ramp", events)
    assert dead == []
    th = of(events, "threshold")
    assert len({e["alert_id"] for e in th}) == 1  # one episode through all levels
    rising = [e["level"] for e in th if e["event"] in ("opened", "updated")]
    assert rising.index("yellow") < rising.index("orange") < rising.index("red")
    first_orange = min(e["ts"] for e in th if e["level"] == "orange")
    forecast_orange = [e for e in of(events, "forecast", "opened") if e["level"] == "orange"]
    assert forecast_orange and forecast_orange[0]["ts"] < first_orange
    assert forecast_orange[0]["eta_s"] > 0
    assert th[-1]["event"] == "resolved"
    assert th[0]["message"].startswith("CH4 ")
    assert "Jiangxia No.2 coal mine" in th[0]["message"]


def test_stale(tmp_path: Path) -> None:
    events, _ = detect("stale", tmp_path)
    golden("stale", events)
    stale = of(events, "stale")
    assert [e["event"] for e in stale] == ["opened", "resolved"]
    assert {e["sensor_id"] for e in stale} == {"HB-WH-0001/CH4-04"}
    # last reading at 08:19:50, three 10 s intervals later; back at 08:30:00
    assert stale[0]["ts"] == "2025-11-28T08:20:20.000Z"
    assert stale[1]["ts"] == "2025-11-28T08:30:00.000Z"
    assert of(events, "threshold") == []


def test_flatline(tmp_path: Path) -> None:
    events, _ = detect("flatline", tmp_path)
    golden("flatline", events)
    flat = of(events, "flatline", "opened")
    assert len(flat) == 1
    # stuck from 08:30:00; flagged after the 30 min window, not before
    assert flat[0]["ts"] >= "2025-11-28T09:00:00.000Z"
    assert of(events, "threshold") == []


def test_fault_is_never_a_threshold_breach(tmp_path: Path) -> None:
    events, _ = detect("fault", tmp_path)
    golden("fault", events)
    assert of(events, "threshold") == [] and of(events, "forecast") == []
    opened = of(events, "fault", "opened")
    assert [e["evidence"]["reason"] for e in opened] == ["range", "quality"]
    assert all(e["level"] != "red" for e in events)
    assert "outside range [0.0, 100.0]" in opened[0]["message"]
    assert len(of(events, "fault", "resolved")) == 2


def test_anomaly_below_the_limits(tmp_path: Path) -> None:
    events, _ = detect("anomaly", tmp_path)
    golden("anomaly", events)
    an = of(events, "anomaly", "opened")
    assert len(an) == 1 and an[0]["ts"] == "2025-11-28T09:10:00.000Z"  # the step
    assert an[0]["score"] >= 0.8
    assert of(events, "threshold") == []


def test_oxygen_falling_uses_low_direction(tmp_path: Path) -> None:
    events, _ = detect("oxygen_falling", tmp_path)
    golden("oxygen_falling", events)
    th = of(events, "threshold")
    assert len({e["alert_id"] for e in th}) == 1
    assert [e["level"] for e in th if e["event"] in ("opened", "updated")][:3] == [
        "yellow",
        "orange",
        "red",
    ]
    assert all(e["value"] <= e["threshold"] for e in th if e["event"] == "opened")
    assert "<= yellow limit 19.5" in th[0]["message"]
    assert th[-1]["event"] == "resolved"


def test_bad_lines_go_to_dead_letters_only(tmp_path: Path) -> None:
    events, dead = detect("bad_lines", tmp_path)
    golden("bad_lines", events)
    assert events == []
    assert sorted(d["reason"] for d in dead) == sorted(
        [
            "malformed_json",
            "schema_violation",
            "non_finite_value",
            "bad_timestamp",
            "unit_mismatch",
            "unknown_sensor",
        ]
    )
    assert all(d["source"]["topic"] == "file:bad_lines.jsonl" for d in dead)
    lines = (HERE / "bad_lines.jsonl").read_text().splitlines()
    for d in dead:  # offset = line number; payload kept byte for byte
        assert lines[d["source"]["offset"] - 1] == d["payload"]


def test_escalation_and_disposal(tmp_path: Path) -> None:
    events, _ = detect("escalation", tmp_path)
    golden("escalation", events)
    a = "HB-WH-0001/CH4-03:threshold:1764317400000"  # opened 08:10:00, never answered
    esc = [e for e in events if e["alert_id"] == a and e["event"] == "escalated"]
    assert [(e["tier"], e["ts"][11:19]) for e in esc] == [
        (1, "08:15:00"),
        (2, "08:20:00"),
        (3, "08:25:00"),
    ]
    b = "HB-WH-0001/CH4-04:threshold:1764319800000"  # opened 08:50:00, acknowledged 08:52
    life = [
        (e["event"], e["evidence"].get("disposition", {}).get("action"))
        for e in events
        if e["alert_id"] == b
    ]
    assert life == [
        ("opened", None),
        ("acknowledged", "acknowledge"),
        ("updated", "dispatch"),
        ("resolved", None),
        ("updated", "rectify"),
        ("updated", "verify"),
        ("closed", "close"),
    ]
    assert [e["seq"] for e in events if e["alert_id"] == b] == list(range(1, 8))


def test_escalation_hidden_danger_list_and_rejections(tmp_path: Path) -> None:
    from pipeline.alerts.risk import RegionRollup
    from pipeline.engine import Engine
    from pipeline.jsonl import iter_lines
    from pipeline.model import Disposition, Reading
    from pipeline.registry import load_registry
    from pipeline.timeutil import parse_rfc3339
    from pipeline.validation import Validator, parse_disposition

    now_ms = parse_rfc3339(NOW)
    reg = load_registry(REGISTRY)
    engine = Engine(reg, region_rollup=RegionRollup())
    validator = Validator(reg)
    disps = [
        parse_disposition(raw, 0) for _, raw in iter_lines(HERE / "escalation.dispositions.jsonl")
    ]
    pending = sorted((d for d in disps if isinstance(d, Disposition)), key=lambda d: d.at)
    rejected = []
    from pipeline.model import SourcePosition

    for n, raw in iter_lines(HERE / "escalation.jsonl"):
        r = validator.validate(raw, None, SourcePosition("f", 0, n), now_ms, None)
        assert isinstance(r, Reading)
        while pending and pending[0].at <= max(engine.watermark_ms or 0, r.ts):
            rejected += engine.on_disposition(pending.pop(0)).rejected
        engine.on_reading(r)
    assert [(d.action, reason) for d, reason in rejected] == [
        ("verify", "illegal_transition"),
        ("close", "not_resolved"),
    ]
    now = engine.watermark_ms or 0
    assert [e["alert_id"] for e in engine.hidden_dangers.query(now)] == [
        "HB-WH-0001/CH4-03:threshold:1764317400000"
    ]
    assert engine.hidden_dangers.query(now, region=["Jiangsu"]) == []


def test_two_runs_identical(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, _ = detect("escalation", tmp_path / "a")
    b, _ = detect("escalation", tmp_path / "b")
    assert a == b and a


@pytest.mark.parametrize("bad", ["registry", "input"])
def test_missing_file_is_one_line_error(tmp_path: Path, bad: str) -> None:
    args = [
        "detect",
        "--registry",
        str(REGISTRY),
        "--input",
        str(HERE / "stale.jsonl"),
        "--alerts",
        str(tmp_path / "a"),
        "--deadletter",
        str(tmp_path / "d"),
    ]
    args[args.index(f"--{bad}") + 1] = str(tmp_path / "missing")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "not found" in result.output and "Traceback" not in result.output


def test_bad_registry_is_one_line_error(tmp_path: Path) -> None:
    reg = tmp_path / "reg.yaml"
    reg.write_text("sites: [1, 2\n")
    result = CliRunner().invoke(
        app,
        [
            "detect",
            "--registry",
            str(reg),
            "--input",
            str(HERE / "stale.jsonl"),
            "--alerts",
            str(tmp_path / "a"),
            "--deadletter",
            str(tmp_path / "d"),
        ],
    )
    assert result.exit_code == 2 and "bad registry" in result.output
