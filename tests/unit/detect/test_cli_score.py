from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from pipeline.cli import app

runner = CliRunner()


def _write(path: Path, rows: list[str], header: str = "timestamp,value") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _scores(path: Path) -> list[float]:
    with open(path) as fh:
        return [float(r["anomaly_score"]) for r in csv.DictReader(fh)]


def test_score_is_causal_bounded_and_echoes_timestamps(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vals = np.r_[rng.normal(10, 1, 400), 40.0, rng.normal(10, 1, 99)]
    rows = [f"2014-04-01 {i // 60:02d}:{i % 60:02d}:00,{float(v)!r}" for i, v in enumerate(vals)]
    full = _write(tmp_path / "full.csv", rows)
    part = _write(tmp_path / "part.csv", rows[:200])
    r1 = runner.invoke(app, ["score", "--input", str(full), "--output", str(tmp_path / "o1.csv")])
    r2 = runner.invoke(app, ["score", "--input", str(part), "--output", str(tmp_path / "o2.csv")])
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    s_full, s_part = _scores(tmp_path / "o1.csv"), _scores(tmp_path / "o2.csv")
    assert s_part == s_full[:200]
    assert all(0.0 <= s <= 1.0 for s in s_full)
    assert s_full[400] == max(s_full[300:]) and s_full[400] > 0.9
    with open(tmp_path / "o1.csv") as fh:
        first = next(csv.DictReader(fh))
    assert first["timestamp"] == "2014-04-01 00:00:00"


def test_accepts_rfc3339_and_epoch_ms(tmp_path: Path) -> None:
    f = _write(tmp_path / "a.csv", ["2026-11-28T08:00:00Z,1.0", "1764316810000,2.0"])
    r = runner.invoke(app, ["score", "--input", str(f), "--output", str(tmp_path / "o.csv")])
    assert r.exit_code == 0, r.output


def test_bad_inputs_name_file_and_line(tmp_path: Path) -> None:
    cases = {
        "val.csv": (["2014-04-01 00:00:00,1", "2014-04-01 00:05:00,abc"], ":3:"),
        "ts.csv": (["yesterday,1"], ":2:"),
        "nan.csv": (["2014-04-01 00:00:00,nan"], ":2:"),
        "cols.csv": (["2014-04-01 00:00:00,1,2"], ":2:"),
    }
    for name, (rows, where) in cases.items():
        f = _write(tmp_path / name, rows)
        r = runner.invoke(app, ["score", "--input", str(f), "--output", str(tmp_path / "o.csv")])
        assert r.exit_code == 2, name
        assert f"{name}{where}" in r.output.replace("\n", ""), r.output
        assert "Traceback" not in r.output
    hdr = _write(tmp_path / "hdr.csv", ["1,2"], header="time,val")
    r = runner.invoke(app, ["score", "--input", str(hdr), "--output", str(tmp_path / "o.csv")])
    assert r.exit_code == 2 and "hdr.csv:1:" in r.output.replace("\n", "")
    r = runner.invoke(
        app,
        ["score", "--input", str(tmp_path / "missing.csv"), "--output", str(tmp_path / "o.csv")],
    )
    assert r.exit_code == 2 and "missing.csv" in r.output
