"""The telemetry simulator: deterministic, realistic when calm, and every incident
kind changes the stream the way its documentation says (and nowhere else)."""

from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict
from collections.abc import Sequence
from itertools import islice, pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.simulate import (
    INCIDENT_KINDS,
    Incident,
    build_registry,
    generate,
    parse_incident,
)
from pipeline.timeutil import parse_rfc3339

ROOT = Path(__file__).resolve().parents[2]
START = parse_rfc3339("2026-11-28T00:00:00Z")  # 08:00 China Standard Time
REG = build_registry(3, seed=11)  # coal mine, hazardous chemicals, construction
SENSORS = {s["sensor_id"]: s for s in REG["sensors"]}


def _sensor(metric: str) -> dict[str, Any]:
    return next(s for s in REG["sensors"] if s["metric"] == metric)


def _stream(
    incidents: Sequence[Incident] = (), duration_s: float = 3600, seed: int = 5
) -> list[dict[str, Any]]:
    return list(generate(REG, START, duration_s, list(incidents), seed))


def _series(stream: list[dict[str, Any]], sensor_id: str) -> list[tuple[float, float, str]]:
    """(seconds after START, value, quality) of one sensor."""
    return [
        ((parse_rfc3339(r["ts"]) - START) / 1000.0, r["value"], r["quality"])
        for r in stream
        if r["sensor_id"] == sensor_id
    ]


def _level(sensor: dict[str, Any], level: str) -> float:
    return float(sensor["thresholds"]["levels"][level])


def _past(sensor: dict[str, Any], value: float, level: str) -> bool:
    limit = _level(sensor, level)
    return value >= limit if sensor["thresholds"]["direction"] == "high" else value <= limit


BASE = _stream()


# ----------------------------------------------------------------------------- registry
def test_registry_validates_against_the_schema() -> None:
    from schemas import validator_for

    reg = build_registry(60, seed=3)
    errors = [e.message for e in validator_for("registry").iter_errors(reg)]
    assert errors == []


def test_written_registry_loads_with_the_project_loader(tmp_path: Path) -> None:
    from pipeline.registry import load_registry

    reg = build_registry(40, seed=8)
    path = tmp_path / "reg.yaml"
    path.write_text(yaml.safe_dump(reg, sort_keys=False))
    loaded = load_registry(path)
    assert set(loaded.sites) == {s["site_id"] for s in reg["sites"]}
    assert set(loaded.sensors) == {s["sensor_id"] for s in reg["sensors"]}
    o2 = next(s for s in loaded.sensors.values() if s.metric == "o2")
    assert o2.thresholds is not None and o2.thresholds.direction == "low"


def test_registry_is_plausible() -> None:
    reg = build_registry(60, seed=3)
    site_ids = [s["site_id"] for s in reg["sites"]]
    assert len(set(site_ids)) == 60
    assert {s["industry"] for s in reg["sites"]} == {
        "coal_mine", "hazardous_chemicals", "construction",
    }  # fmt: skip
    sensor_ids = [s["sensor_id"] for s in reg["sensors"]]
    assert len(set(sensor_ids)) == len(sensor_ids)
    for site in reg["sites"]:
        assert re.fullmatch(r"HB-[A-Z]{2}-\d{4}", site["site_id"])
        assert site["region"][0] == "Hubei" and len(site["region"]) == 3
        assert site["region"][1] in site["address"] and site["region"][2] in site["address"]
        code = site["unit"]["credit_code"]
        assert len(code) == 18 and code.startswith("9142")
        assert _credit_check_ok(code), code
    for sensor in reg["sensors"]:
        assert re.fullmatch(re.escape(sensor["site_id"]) + r"/[A-Z0-9]+-\d{2}", sensor["sensor_id"])
        lv = [sensor["thresholds"]["levels"][k] for k in ("blue", "yellow", "orange", "red")]
        if sensor["thresholds"]["direction"] == "high":
            assert lv == sorted(lv) and len(set(lv)) == 4
        else:
            assert lv == sorted(lv, reverse=True) and len(set(lv)) == 4
        lo, hi = sensor["range"]
        assert all(lo <= v <= hi for v in lv)
        assert 10 <= sensor["interval_s"] <= 60
    o2 = next(s for s in reg["sensors"] if s["metric"] == "o2")
    assert o2["thresholds"]["direction"] == "low"


def _credit_check_ok(code: str) -> bool:
    """GB 32100-2015 check character, computed independently of the implementation."""
    chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    weights = [pow(3, i, 31) for i in range(17)]
    total = sum(chars.index(c) * w for c, w in zip(code[:17], weights, strict=True))
    return chars[(31 - total % 31) % 31] == code[17]


def test_registry_is_deterministic_and_prefix_stable() -> None:
    assert build_registry(20, seed=4) == build_registry(20, seed=4)
    assert build_registry(20, seed=4) != build_registry(20, seed=5)
    small, big = build_registry(5, seed=4), build_registry(30, seed=4)
    assert big["sites"][:5] == small["sites"]


def test_compose_registry_matches_the_generator() -> None:
    shipped = yaml.safe_load((ROOT / "ops" / "config" / "registry.yaml").read_text())
    assert shipped == build_registry(50, seed=7)


# ---------------------------------------------------------------------------- stream
def test_deterministic_with_a_seed() -> None:
    assert _stream(duration_s=600) == _stream(duration_s=600)
    other = _stream(duration_s=600, seed=6)
    assert [r["value"] for r in other] != [r["value"] for r in _stream(duration_s=600)]


def test_stream_is_in_event_time_order_and_follows_the_contract() -> None:
    from schemas import validator_for

    validator = validator_for("telemetry")
    times = [parse_rfc3339(r["ts"]) for r in BASE]
    assert times == sorted(times)
    assert times[0] >= START and times[-1] < START + 3600 * 1000
    for r in BASE[:300]:
        assert list(validator.iter_errors(r)) == []
        assert r["ts"].endswith("Z")
        assert r["unit"] == SENSORS[r["sensor_id"]]["unit"]
    by_sensor: dict[str, list[int]] = defaultdict(list)
    for r, t in zip(BASE, times, strict=True):
        by_sensor[r["sensor_id"]].append(t)
    assert set(by_sensor) == set(SENSORS)
    for sid, ts in by_sensor.items():
        interval = SENSORS[sid]["interval_s"] * 1000
        gaps = [b - a for a, b in pairwise(ts)]
        assert abs(statistics.mean(gaps) - interval) < 0.02 * interval
        assert min(gaps) > 0.85 * interval and max(gaps) < 1.15 * interval


def test_calm_day_raises_nothing_but_is_not_flat() -> None:
    reg = build_registry(12, seed=2)
    sensors = {s["sensor_id"]: s for s in reg["sensors"]}
    values: dict[str, list[float]] = defaultdict(list)
    for r in generate(reg, START, 6 * 3600, [], seed=2):
        s = sensors[r["sensor_id"]]
        lo, hi = s["range"]
        assert lo <= r["value"] <= hi and r["quality"] == "good"
        assert not _past(s, r["value"], "blue"), r
        values[r["sensor_id"]].append(r["value"])
    for sid, vs in values.items():
        assert len(set(vs)) > 5, f"{sid} looks stuck in normal operation"


def test_diurnal_drift_louder_in_the_afternoon() -> None:
    reg = build_registry(3, seed=11)
    noise_id = next(s["sensor_id"] for s in reg["sensors"] if s["metric"] == "noise")
    day = [r for r in generate(reg, START, 86400, [], 1) if r["sensor_id"] == noise_id]

    def mean_at(hour_utc: int) -> float:
        values: list[float] = [
            r["value"] for r in day if parse_rfc3339(r["ts"]) // 3_600_000 % 24 == hour_utc
        ]
        return statistics.mean(values)

    # 06:00 UTC = 14:00 local (site busy), 18:00 UTC = 02:00 local (quiet).
    assert mean_at(6) - mean_at(18) > 5.0


# ------------------------------------------------------------------------- incidents
def _outside_unchanged(stream: list[dict[str, Any]], inc: Incident, sid: str) -> None:
    """Outside the incident's window (and on other sensors) nothing changes."""
    lo, hi = inc.start_s * 1000 + START, (inc.start_s + inc.duration_s) * 1000 + START

    def key(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in rs if r["sensor_id"] != sid or not lo <= parse_rfc3339(r["ts"]) < hi]

    assert key(stream) == key(BASE)


def test_ramp_crosses_orange_when_expected() -> None:
    ch4 = _sensor("ch4")
    sid = ch4["sensor_id"]
    before = [v for t, v, _ in _series(BASE, sid) if 600 <= t < 1200]
    baseline = statistics.mean(before)
    inc = Incident("ramp", sid, 1200, 900, magnitude=1.2)
    stream = _stream([inc])
    expected = 1200 + 900 * (_level(ch4, "orange") - baseline) / 1.2
    first = next(t for t, v, _ in _series(stream, sid) if _past(ch4, v, "orange"))
    # Noise is ~0.01 %vol and the ramp climbs 0.08 %vol/min: within ~30 s.
    assert abs(first - expected) < 45, (first, expected)
    assert all(not _past(ch4, v, "blue") for t, v, _ in _series(stream, sid) if t >= 2100)
    _outside_unchanged(stream, inc, sid)


def test_default_ramp_reaches_its_level_inside_the_window() -> None:
    o2 = _sensor("o2")  # a LOW-direction sensor: the ramp goes down
    sid = o2["sensor_id"]
    inc = Incident("ramp", sid, 600, 1200, level="red")
    series = _series(_stream([inc]), sid)
    crossing = next(t for t, v, _ in series if _past(o2, v, "red"))
    assert 600 < crossing < 1800
    vals = [v for t, v, _ in series if 600 <= t < 1800]
    assert vals[-1] < vals[0]


def test_step_holds_between_orange_and_red() -> None:
    for metric in ("tank_level", "wind_speed"):
        s = _sensor(metric)
        inc = Incident("step", s["sensor_id"], 900, 600)
        stream = _stream([inc])
        inside = [v for t, v, _ in _series(stream, s["sensor_id"]) if 900 <= t < 1500]
        assert inside
        assert all(_past(s, v, "orange") and not _past(s, v, "red") for v in inside), metric
        _outside_unchanged(stream, inc, s["sensor_id"])


def test_spike_is_short_and_past_red() -> None:
    s = _sensor("h2s")
    inc = Incident("spike", s["sensor_id"], 1000.0, 0.0)
    stream = _stream([inc])
    series = _series(stream, s["sensor_id"])
    past_red = [t for t, v, _ in series if _past(s, v, "red")]
    assert len(past_red) == 1 and 1000 <= past_red[0] < 1000 + 1.1 * s["interval_s"]
    assert sum(_past(s, v, "blue") for _, v, _ in series) == 1


def test_stuck_freezes_the_last_value() -> None:
    s = _sensor("temperature")
    sid = s["sensor_id"]
    inc = Incident("stuck", sid, 1200, 900)
    stream = _stream([inc])
    series = _series(stream, sid)
    last_before = [v for t, v, _ in series if t < 1200][-1]
    inside = [v for t, v, _ in series if 1200 <= t < 2100]
    assert len(inside) >= 25 and set(inside) == {last_before}
    normal_inside = [v for t, v, _ in _series(BASE, sid) if 1200 <= t < 2100]
    assert len(set(normal_inside)) > 3
    _outside_unchanged(stream, inc, sid)


def test_silent_leaves_a_gap_on_the_whole_site() -> None:
    site = REG["sites"][1]["site_id"]
    inc = Incident("silent", site, 600, 1200)
    stream = _stream([inc])
    site_sensors = [s["sensor_id"] for s in REG["sensors"] if s["site_id"] == site]
    assert len(site_sensors) > 1
    for sid in site_sensors:
        times = [t for t, _, _ in _series(stream, sid)]
        assert not any(600 <= t < 1800 for t in times)
        gap = min(t for t in times if t >= 1800) - max(t for t in times if t < 600)
        assert gap >= 1200
    lo, hi = START + 600_000, START + 1_800_000
    assert [r for r in stream if not lo <= parse_rfc3339(r["ts"]) < hi] == [
        r for r in BASE if not lo <= parse_rfc3339(r["ts"]) < hi
    ]
    others = [r for r in stream if r["site_id"] != site]
    assert others == [r for r in BASE if r["site_id"] != site]


def test_broken_is_out_of_range_and_bad() -> None:
    s = _sensor("pressure")
    inc = Incident("broken", s["sensor_id"], 300, 300)
    inside = [(v, q) for t, v, q in _series(_stream([inc]), s["sensor_id"]) if 300 <= t < 600]
    lo, hi = s["range"]
    assert inside and all(q == "bad" and not lo <= v <= hi for v, q in inside)


def test_chatter_hovers_around_the_limit() -> None:
    s = _sensor("flammable_gas")
    sid = s["sensor_id"]
    inc = Incident("chatter", sid, 600, 1800, level="yellow")
    inside = [v for t, v, _ in _series(_stream([inc]), sid) if 600 <= t < 2400]
    limit = _level(s, "yellow")
    above = sum(v >= limit for v in inside)
    below = len(inside) - above
    assert above > len(inside) // 4 and below > len(inside) // 4
    assert all(abs(v - limit) <= 0.1 * limit for v in inside)
    crossings = sum((a >= limit) != (b >= limit) for a, b in pairwise(inside))
    assert crossings > 20


def test_every_incident_kind_changes_its_window() -> None:
    s = _sensor("co")
    sid = s["sensor_id"]
    base_inside = [(t, v, q) for t, v, q in _series(BASE, sid) if 1200 <= t < 1800]
    for kind in INCIDENT_KINDS:
        inc = Incident(kind, sid, 1200, 600)
        stream = _stream([inc])
        inside = [(t, v, q) for t, v, q in _series(stream, sid) if 1200 <= t < 1800]
        assert inside != base_inside, kind
        _outside_unchanged(stream, inc, sid)


# ----------------------------------------------------------------------------- parser
def test_parse_incident_forms() -> None:
    assert parse_incident("ramp:HB-WH-0001/CH4-01@600+900") == Incident(
        "ramp", "HB-WH-0001/CH4-01", 600.0, 900.0
    )
    inc = parse_incident("step:HB-YC-0002/*@10m+1.5h=0.4:red")
    assert (inc.kind, inc.target, inc.start_s, inc.duration_s) == (
        "step",
        "HB-YC-0002/*",
        600,
        5400,
    )
    assert (inc.magnitude, inc.level) == (0.4, "red")
    assert parse_incident("spike:HB-WH-0001/CO-01@30").duration_s == 0.0
    assert parse_incident("chatter:X@1+2=-1e-1").magnitude == pytest.approx(-0.1)


@pytest.mark.parametrize(
    "bad",
    ["", "ramp", "ramp:X", "boom:X@1+2", "ramp:X@-1+2", "ramp:X@1+2:purple", "ramp:X@1+2=abc",
     "ramp:X@1d+2", "ramp:X@1+2=nan"],
)  # fmt: skip
def test_parse_incident_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_incident(bad)


# -------------------------------------------------------------------------------- CLI
def test_cli_writes_registry_and_telemetry(tmp_path: Path) -> None:
    reg_out, out = tmp_path / "reg.yaml", tmp_path / "t.jsonl"
    res = CliRunner().invoke(
        app,
        ["simulate", "--sites", "4", "--seed", "9", "--duration", "300",
         "--start", "2026-11-28T08:00:00+08:00",
         "--incident", "broken:HB-*-0002/*@60+60", "--registry-out", str(reg_out),
         "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    reg = yaml.safe_load(reg_out.read_text())
    assert reg == build_registry(4, seed=9)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines == list(
        generate(reg, START, 300, [parse_incident("broken:HB-*-0002/*@60+60")], seed=9)
    )
    assert any(r["quality"] == "bad" for r in lines)

    # --registry replays a given registry file; JSON registry output too.
    res = CliRunner().invoke(
        app,
        ["simulate", "--registry", str(reg_out), "--seed", "9", "--duration", "300",
         "--start", "2026-11-28T00:00:00Z", "--registry-out", str(tmp_path / "r.json"),
         "--out", str(tmp_path / "again.jsonl")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "r.json").read_text()) == reg
    again = [json.loads(x) for x in (tmp_path / "again.jsonl").read_text().splitlines()]
    assert again == list(generate(reg, START, 300, [], seed=9))
    assert [r for r in again if "-0002/" not in r["sensor_id"]] == [
        r for r in lines if "-0002/" not in r["sensor_id"]
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--incident", "boom:X@1+2"], "--incident"),
        (["--start", "yesterday"], "--start"),
        (["--duration", "0"], "--to-kafka"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    res = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "x"), *args])
    assert res.exit_code == 2
    assert message in res.output and "Traceback" not in res.output


def test_cli_bad_registry_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "reg.yaml"
    bad.write_text("sites: [\n  - {site_id: a\n")
    res = CliRunner().invoke(app, ["simulate", "--registry", str(bad)])
    assert res.exit_code == 2 and re.search(r"reg\.yaml:\d+", res.output), res.output


def test_cli_kafka_branch_hands_a_lazy_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.kafka_io as kafka_io

    seen: dict[str, Any] = {}

    def fake(records: Any, topic: str, bootstrap: str, speed: float | None = None) -> int:
        seen.update(
            topic=topic, bootstrap=bootstrap, speed=speed, lazy=not isinstance(records, list)
        )
        seen["first"] = [next(records) for _ in range(5)]
        return 5

    monkeypatch.setattr(kafka_io, "produce_paced", fake)
    res = CliRunner().invoke(
        app,
        ["simulate", "--sites", "2", "--duration", "0", "--to-kafka", "--bootstrap", "k:9092",
         "--realtime", "--start", "2026-11-28T00:00:00Z"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert seen["topic"] == "ew.telemetry" and seen["bootstrap"] == "k:9092"
    assert seen["speed"] == 1.0 and seen["lazy"]
    assert seen["first"] == list(islice(generate(build_registry(2, 0), START, None, [], 0), 5))


def test_unknown_metric_gets_a_calm_generic_signal() -> None:
    reg = {
        "sites": [REG["sites"][0]],
        "sensors": [
            {
                "sensor_id": f"{REG['sites'][0]['site_id']}/VIB-01",
                "site_id": REG["sites"][0]["site_id"],
                "metric": "vibration",
                "unit": "mm/s",
                "interval_s": 5,
                "range": [0, 50],
                "thresholds": {
                    "direction": "high",
                    "levels": {"blue": 7.1, "yellow": 11.2, "orange": 18.0, "red": 28.0},
                },
            }
        ],
    }
    sensor = reg["sensors"][0]
    calm = list(generate(reg, START, 3600, [], 3))
    assert len(calm) == 720
    assert all(0 <= r["value"] < 7.1 for r in calm)
    assert len({r["value"] for r in calm}) > 50
    step = Incident("step", sensor["sensor_id"], 600, 600, level="yellow")
    inside = [v for t, v, _ in _series(list(generate(reg, START, 3600, [step], 3)),
                                       sensor["sensor_id"]) if 600 <= t < 1200]  # fmt: skip
    assert inside and all(11.2 <= v < 18.0 for v in inside)


def test_demo_pacing_never_sleeps_a_negative_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a busy machine the clock moves between the pacing check and the sleep."""
    import threading

    from pipeline.cli import demo

    clock = [1000.0]
    slept: list[float] = []

    def monotonic() -> float:
        clock[0] += 0.17  # every reading of the clock costs 170 ms
        return clock[0]

    def sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        slept.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr("time.monotonic", monotonic)  # the demo module's clock
    monkeypatch.setattr("time.sleep", sleep)
    records = [{"ts": 1_000 + i * 1_000} for i in range(6)]  # one per second
    out = list(demo._paced(iter(records), live_from_ms=1_000, speed=1.0,
                           stop=threading.Event()))
    assert out == records
    assert slept and all(s > 0 for s in slept)
