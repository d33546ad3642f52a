"""``ewarn validate`` and ``iter_lines``: counts, dead-letter file, one-line errors, exit codes."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.jsonl import iter_lines
from tests.unit.contract.conftest import FIXTURE_REGISTRY, good_record

runner = CliRunner()
NOW = "2026-11-28T08:00:00Z"


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _row(output: str, label: str) -> int:
    match = re.search(rf"{re.escape(label)}\s*│\s*(\d+)", output)
    assert match, f"no row {label!r} in:\n{output}"
    return int(match.group(1))


def test_iter_lines_keeps_bytes_and_numbers(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"a":1}\r\n\n\xff\xfe\n   \nlast-without-newline')
    assert list(iter_lines(path)) == [
        (1, b'{"a":1}\r'),
        (3, b"\xff\xfe"),
        (4, b"   "),
        (5, b"last-without-newline"),
    ]


def test_summary_and_dead_letters(tmp_path: Path) -> None:
    lines = [
        json.dumps(good_record()).encode(),  # 1 accepted
        json.dumps(good_record(unit="ppm")).encode(),  # 2 unit_mismatch
        b"",  # 3 skipped: empty line
        b"\xff not utf-8",  # 4 malformed_json, base64
        json.dumps(good_record(sensor_id="HB-WH-0001/NOPE")).encode(),  # 5 unknown_sensor
        json.dumps(good_record(ts="2026-11-28T07:59:59.999Z", value=0.5)).encode(),  # 6 accepted
        b"   ",  # 7 malformed_json
    ]
    infile = _write(tmp_path / "gateway.jsonl", lines)
    dl_path = tmp_path / "dl.jsonl"
    result = runner.invoke(
        app,
        [
            "validate",
            "--registry",
            str(FIXTURE_REGISTRY),
            "--input",
            str(infile),
            "--deadletter",
            str(dl_path),
            "--now",
            NOW,
        ],
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert _row(out, "accepted") == 2
    assert _row(out, "rejected: malformed_json") == 2
    assert _row(out, "rejected: unit_mismatch") == 1
    assert _row(out, "rejected: unknown_sensor") == 1
    assert _row(out, "rejected (total)") == 4
    assert _row(out, "input records") == 6
    assert "bad_timestamp" not in out, "reasons with no records are not listed"
    dead = [json.loads(x) for x in dl_path.read_text().splitlines()]
    assert [(d["reason"], d["source"]["offset"]) for d in dead] == [
        ("unit_mismatch", 2),
        ("malformed_json", 4),
        ("unknown_sensor", 5),
        ("malformed_json", 7),
    ]
    assert {d["source"]["topic"] for d in dead} == {"file:gateway.jsonl"}
    assert {d["source"]["partition"] for d in dead} == {0}
    by_line = {d["source"]["offset"]: d for d in dead}
    assert base64.b64decode(by_line[4]["payload"]) == lines[3]
    assert by_line[4]["payload_encoding"] == "base64"
    assert by_line[2]["payload"].encode() == lines[1]
    assert by_line[7]["payload"] == "   "
    assert all(d["at"] == "2026-11-28T08:00:00.000Z" for d in dead)


def test_replayed_future_data_follows_the_watermark(tmp_path: Path) -> None:
    stamps = [f"2026-11-28T{h:02d}:30:00Z" for h in range(8, 14)]  # hours after --now
    infile = _write(tmp_path / "in.jsonl", [json.dumps(good_record(ts=t)).encode() for t in stamps])
    result = runner.invoke(
        app, ["validate", "--registry", str(FIXTURE_REGISTRY), "--input", str(infile), "--now", NOW]
    )
    assert result.exit_code == 0 and _row(result.output, "accepted") == len(stamps)


def test_missing_input_exits_2_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.jsonl"
    result = runner.invoke(
        app, ["validate", "--registry", str(FIXTURE_REGISTRY), "--input", str(missing)]
    )
    assert result.exit_code == 2
    assert "absent.jsonl" in result.output and "Traceback" not in result.output


def test_bad_registry_exits_2_naming_file_line_and_field(tmp_path: Path) -> None:
    text = FIXTURE_REGISTRY.read_text().replace("orange: 1.0, red: 1.5", "orange: 0.7, red: 1.5")
    assert text != FIXTURE_REGISTRY.read_text()
    reg = tmp_path / "broken.yaml"
    reg.write_text(text)
    infile = _write(tmp_path / "in.jsonl", [b"{}"])
    result = runner.invoke(app, ["validate", "--registry", str(reg), "--input", str(infile)])
    assert result.exit_code == 2
    flat = " ".join(result.output.split())
    assert re.search(r"broken\.yaml:\d+: sensor HB-WH-0001/CH4-03: thresholds\.levels", flat), flat


def test_missing_registry_exits_2(tmp_path: Path) -> None:
    infile = _write(tmp_path / "in.jsonl", [b"{}"])
    result = runner.invoke(
        app, ["validate", "--registry", str(tmp_path / "reg.yaml"), "--input", str(infile)]
    )
    assert result.exit_code == 2 and "reg.yaml" in result.output
