"""``ewarn detect`` options beyond the golden replays: silences, dispositions, risk."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pipeline.cli import app

HERE = Path(__file__).parent
NOW = "2025-11-28T12:00:00Z"


def invoke(tmp_path: Path, name: str, *extra: str) -> tuple[int, str]:
    args = [
        "detect",
        "--registry",
        str(HERE / "registry.yaml"),
        "--input",
        str(HERE / f"{name}.jsonl"),
        "--alerts",
        str(tmp_path / "a.jsonl"),
        "--deadletter",
        str(tmp_path / "d.jsonl"),
        "--now",
        NOW,
        *extra,
    ]
    result = CliRunner().invoke(app, args)
    return result.exit_code, " ".join(result.output.split())  # rich wraps long lines


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_silences_file_mutes_notifications(tmp_path: Path) -> None:
    sil = tmp_path / "s.jsonl"
    sil.write_text(
        json.dumps(
            {
                "site_id": "HB-WH-0001",
                "sensor_id": "HB-WH-0001/CH4-04",
                "kind": "stale",
                "start": "2025-11-28T08:00:00Z",
                "end": "2025-11-28T09:00:00Z",
                "reason": "cable work",
                "by": "maint-7",
            }
        )
        + "\n"
    )
    code, out = invoke(tmp_path, "stale", "--silences", str(sil))
    assert code == 0, out
    events = lines(tmp_path / "a.jsonl")
    assert [e["event"] for e in events] == ["opened", "resolved"]
    for e in events:
        ev = e["evidence"]
        assert isinstance(ev, dict)
        assert ev["notify"] is False and ev["silenced_by"]["reason"] == "cable work"


def test_bad_silence_line_is_one_line_error(tmp_path: Path) -> None:
    sil = tmp_path / "s.jsonl"
    sil.write_text('{"site_id": "HB-WH-0001"}\n')
    code, out = invoke(tmp_path, "stale", "--silences", str(sil))
    assert code == 2 and f"{sil}:1" in out.replace(" ", "") and "Traceback" not in out


def test_dispositions_rejections_are_counted_and_risk_written(tmp_path: Path) -> None:
    disp = tmp_path / "d.jsonl"
    aid = "HB-WH-0001/CH4-03:threshold:1764317400000"
    disp.write_text(
        "\n".join(
            [
                json.dumps(
                    {"alert_id": aid, "action": "acknowledge", "at": "2025-11-28T08:11:00Z"}
                ),
                json.dumps(
                    {
                        "alert_id": "x:threshold:1",
                        "action": "acknowledge",
                        "by": "op",
                        "at": "2025-11-28T08:11:00Z",
                    }
                ),
                json.dumps(
                    {
                        "alert_id": aid,
                        "action": "acknowledge",
                        "by": "op",
                        "at": "2025-11-28T08:12:00Z",
                    }
                ),
                json.dumps(
                    {"alert_id": aid, "action": "comment", "by": "op", "at": "2025-11-28T23:00:00Z"}
                ),
            ]
        )
        + "\n"
    )
    risk = tmp_path / "r.jsonl"
    code, out = invoke(tmp_path, "escalation", "--dispositions", str(disp), "--risk", str(risk))
    assert code == 0, out
    assert "missing_by 1" in out and "unknown_alert 1" in out
    assert "1 after the last event time" in out
    events = [e for e in lines(tmp_path / "a.jsonl") if e["alert_id"] == aid]
    assert [e["event"] for e in events] == ["opened", "acknowledged"]  # acked before 08:15
    risks = lines(risk)
    assert {r["scope"] for r in risks} == {"site", "county", "city", "province"}
    assert all(r["schema"] == "ew.risk/1" for r in risks)


def test_outputs_conform_to_the_json_schemas(tmp_path: Path) -> None:
    from schemas import validator_for

    risk = tmp_path / "r.jsonl"
    code, out = invoke(tmp_path, "escalation", "--risk", str(risk), "--dispositions",
                       str(HERE / "escalation.dispositions.jsonl"))
    assert code == 0, out
    alert_v, risk_v = validator_for("alert"), validator_for("risk")
    events = lines(tmp_path / "a.jsonl")
    risks = lines(risk)
    assert events and risks
    for e in events:
        errors = [x.message for x in alert_v.iter_errors(e)]
        assert errors == [], (e, errors)
    for r in risks:
        errors = [x.message for x in risk_v.iter_errors(r)]
        assert errors == [], (r, errors)
