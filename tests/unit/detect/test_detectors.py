"""Behaviour of each detector on synthetic series with known answers."""

from __future__ import annotations

import json

import numpy as np

from pipeline.detect import DetectorParams, check_stale, new_state, step
from pipeline.detect import kernel as K
from pipeline.findings import Finding
from pipeline.model import Kind, RateLimit, Reading, Sensor

from .conftest import T0, ch4, o2, run


def kinds(found: list[tuple[int, Finding]], kind: Kind) -> list[tuple[int, Finding]]:
    return [(i, f) for i, f in found if f.kind == kind]


def test_ramp_forecast_fires_before_orange_and_threshold_is_one_episode() -> None:
    rng = np.random.default_rng(7)
    n = 1400
    i = np.arange(n)
    # 0.3 %vol, then +0.009 %vol/min from reading 200, then back to normal at 1200.
    vals = 0.3 + np.clip(i - 200, 0, None) * 0.0015 + rng.normal(0, 0.01, n)
    vals[1200:] = 0.3 + rng.normal(0, 0.01, 200)
    found = run(ch4(), vals)
    th = kinds(found, "threshold")
    levels = [(f.active, f.level) for _, f in th]
    assert levels == [
        (True, "blue"),
        (True, "yellow"),
        (True, "orange"),
        (True, "red"),
        (False, "red"),
    ]
    orange_at = next(i for i, f in th if f.level == "orange")
    assert vals[orange_at] >= 1.0 and np.all(vals[:orange_at] < 1.0 + 0.05)
    fc_orange = [(i, f) for i, f in kinds(found, "forecast") if f.active and f.level == "orange"]
    assert fc_orange, "no orange forecast"
    fi, f = fc_orange[0]
    lead_s = (orange_at - fi) * 10
    assert lead_s >= 5 * 60, f"forecast only {lead_s}s ahead"
    assert f.threshold == 1.0 and f.eta_s is not None and 0 < f.eta_s <= 1800
    # eta roughly right (within 40 %) and evidence as promised
    assert abs(f.eta_s - lead_s) < 0.4 * lead_s
    assert set(f.evidence) == {"slope_per_min", "t_stat", "target_level"}
    assert abs(f.evidence["slope_per_min"] - 0.009) < 0.004
    # the orange forecast clears no later than the breach
    clear = [i for i, g in kinds(found, "forecast") if not g.active and g.level == "orange"]
    assert clear and fi < clear[0] <= orange_at


def test_forecast_quiet_on_noise_near_a_limit() -> None:
    """False-forecast rate on stationary noise sitting 2 sigma below yellow."""
    rng = np.random.default_rng(11)
    vals = 0.71 + rng.normal(0, 0.02, 20_000)  # 55 h of 10 s readings
    found = run(ch4(), vals)
    fc = [f for _, f in found if f.kind == "forecast" and f.active]
    assert len(fc) <= 1  # measured: 0 per 55 h (bench/README.md)


def test_chatter_around_a_limit_is_one_episode() -> None:
    vals = 0.75 + 0.03 * np.sin(np.arange(600) * 0.9)  # within +-hysteresis of yellow
    found = run(ch4(), np.r_[np.full(50, 0.3), vals, np.full(50, 0.3)])
    th = kinds(found, "threshold")
    # jumps straight from 0.3 to 0.75 (yellow), chatters +-0.03 < hysteresis: one episode
    assert [(f.active, f.level) for _, f in th] == [(True, "yellow"), (False, "yellow")]


def test_hysteresis_boundaries() -> None:
    # yellow at 0.75, hysteresis 0.05: holds at 0.71, clears to blue at 0.70
    found = run(ch4(), [0.3, 0.76, 0.71, 0.705, 0.70, 0.46, 0.449])
    th = [(i, f.active, f.level) for i, f in kinds(found, "threshold")]
    assert th == [(1, True, "yellow"), (4, True, "blue"), (6, False, "blue")]


def test_delay_s_requires_persistence_and_stamps_when_satisfied() -> None:
    s = ch4(delay_s=30.0)
    found = run(s, [0.3, 0.8, 0.8, 0.3, 0.8, 0.8, 0.8, 0.8, 0.8])
    th = kinds(found, "threshold")
    assert len(th) == 1
    i, f = th[0]
    assert i == 7 and f.ts == T0 + 7 * 10_000 and f.level == "yellow"


def test_low_direction_oxygen_falling() -> None:
    vals = np.r_[
        np.full(100, 20.9), np.linspace(20.9, 17.9, 300), np.full(50, 17.9), np.full(50, 20.9)
    ]
    found = run(o2(), vals)
    th = kinds(found, "threshold")
    assert [(f.active, f.level) for _, f in th] == [
        (True, "yellow"),
        (True, "orange"),
        (True, "red"),
        (False, "red"),
    ]
    yi = th[0][0]
    assert vals[yi] <= 19.5 < vals[yi - 1]
    assert th[0][1].threshold == 19.5
    fc = [(i, f) for i, f in kinds(found, "forecast") if f.active]
    assert fc and fc[0][0] < yi and fc[0][1].level == "yellow"


def test_rate_of_change_robust_to_one_noisy_difference() -> None:
    s = ch4(rate=RateLimit(0.2, "yellow"))
    rng = np.random.default_rng(3)
    base = 0.2 + rng.normal(0, 0.005, 200)
    base[100] = 0.45  # one spike: a single difference of 1.5 %/min, must not be a rate alarm
    found = run(s, base)
    assert not kinds(found, "rate")
    ramp = np.r_[np.full(50, 0.1), 0.1 + np.arange(60) * 0.05]  # 0.3 %vol/min
    found = run(s, ramp)
    rt = kinds(found, "rate")
    assert rt and rt[0][1].active and rt[0][1].level == "yellow"
    assert rt[0][1].evidence["slope_per_min"] > 0.2


def test_anomaly_step_and_spike_without_thresholds() -> None:
    sensor = Sensor("S1/T-01", "S1", "temp", "C", 10.0)
    rng = np.random.default_rng(5)
    vals = 40 + rng.normal(0, 0.2, 2000)
    vals[1500:] += 5.0  # lasting step
    vals[800] += 6.0  # spike
    found = run(sensor, vals)
    an = kinds(found, "anomaly")
    opens = [
        i
        for i, f in an
        if f.active and f.level is not None and f.score is not None and f.score >= 0.8
    ]
    assert 800 in opens and 1500 in opens
    assert len([1 for _, f in an if f.active]) <= 6
    assert all(i >= 700 for i, _ in an)  # quiet on the first 700 normal readings
    # the step becomes the new normal: closed some readings later, not reopened
    last_close = max(i for i, f in an if not f.active)
    assert 1500 < last_close < 1600


def test_stale_edge_ts_and_clear(params: DetectorParams) -> None:
    s = ch4()
    st = new_state(s, params)
    st, _ = step(st, Reading("S1", s.sensor_id, "ch4", 0.3, T0), s, params)
    st, f = check_stale(st, s, T0 + 30_000, params)
    assert f == []  # exactly 3 intervals: not yet "more than"
    st, f = check_stale(st, s, T0 + 95_000, params)
    assert len(f) == 1 and f[0].kind == "stale" and f[0].active and f[0].ts == T0 + 30_000
    st, f2 = check_stale(st, s, T0 + 200_000, params)
    assert f2 == []  # edge-triggered
    st, f3 = step(st, Reading("S1", s.sensor_id, "ch4", 0.3, T0 + 210_000), s, params)
    assert [(x.kind, x.active, x.ts) for x in f3] == [("stale", False, T0 + 210_000)]


def test_flatline_only_for_a_sensor_that_varied() -> None:
    rng = np.random.default_rng(2)
    vals = np.r_[0.3 + rng.normal(0, 0.01, 300), np.full(400, 0.31), 0.3 + rng.normal(0, 0.01, 5)]
    found = kinds(run(ch4(), vals), "flatline")
    assert [(i, f.active) for i, f in found] == [(300 + 180, True), (700, False)]
    # a sensor that never varied is not "stuck"
    assert not kinds(run(ch4(), np.full(700, 0.0)), "flatline")


def test_range_violation_is_fault_not_red_and_is_not_learnt() -> None:
    vals = np.r_[np.full(100, 0.3), np.full(5, 150.0), np.full(100, 0.3)]
    found = run(ch4(), vals)
    assert [(i, f.kind, f.active, f.level) for i, f in found] == [
        (100, "fault", True, "orange"),
        (105, "fault", False, "orange"),
    ]
    assert found[0][1].evidence["reason"] == "range"


def test_quality_bad_is_fault_even_for_a_red_value() -> None:
    found = run(ch4(), [0.3, 0.3], quality="good") + run(ch4(), [2.0, 2.0], quality="bad")
    assert [f.kind for _, f in found] == ["fault"]
    assert found[0][1].evidence["reason"] == "quality"


def test_uncertain_quality_alarms_but_does_not_learn(params: DetectorParams) -> None:
    s = ch4()
    st = new_state(s, params)
    st, _ = step(st, Reading("S1", s.sensor_id, "ch4", 0.3, T0), s, params)
    before = list(st.v)
    st, f = step(
        st, Reading("S1", s.sensor_id, "ch4", 1.2, T0 + 10_000, quality="uncertain"), s, params
    )
    assert [(x.kind, x.level) for x in f] == [("threshold", "orange")]
    named = st.named()
    assert named["a_n"] == before[0] and named["tl_s0"] == before[K.TL]


def test_out_of_order_and_duplicates(params: DetectorParams) -> None:
    s = ch4()
    st = new_state(s, params)
    for k in range(20):
        st, _ = step(st, Reading("S1", s.sensor_id, "ch4", 0.3, T0 + k * 10_000), s, params)
    learnt = st.named()
    # duplicate ts and an older reading: not learnt, but a late breach still alarms,
    # stamped at the newest seen ts so per-sensor event time never goes backwards
    st, f = step(st, Reading("S1", s.sensor_id, "ch4", 0.3, T0 + 19 * 10_000), s, params)
    assert f == []
    st, f = step(st, Reading("S1", s.sensor_id, "ch4", 0.8, T0 + 5 * 10_000), s, params)
    assert [(x.kind, x.level, x.ts) for x in f] == [("threshold", "yellow", T0 + 190_000)]
    for key in ("a_n", "tl_s0", "learn_ts", "seen_ts"):
        assert st.named()[key] == learnt[key]
    # far too late: ignored entirely
    st, f = step(st, Reading("S1", s.sensor_id, "ch4", 0.3, T0 - 3_600_000), s, params)
    assert f == []


def test_state_roundtrip_gives_identical_outputs(params: DetectorParams) -> None:
    s = ch4(rate=RateLimit(0.2, "yellow"))
    rng = np.random.default_rng(9)
    vals = np.r_[0.3 + rng.normal(0, 0.01, 300), np.linspace(0.3, 1.7, 400)]
    vals[150] = 5.0
    readings = [
        Reading("S1", s.sensor_id, "ch4", float(v), T0 + k * 10_000) for k, v in enumerate(vals)
    ]
    a = new_state(s, params)
    out_a = []
    for r in readings:
        a, f = step(a, r, s, params)
        out_a.extend(f)
    b = new_state(s, params)
    out_b = []
    for r in readings[:250]:
        b, f = step(b, r, s, params)
        out_b.extend(f)
    blob = json.dumps(b.to_dict(), allow_nan=False)
    assert len(blob) <= 1024
    b = type(b).from_dict(json.loads(blob))
    for r in readings[250:]:
        b, f = step(b, r, s, params)
        out_b.extend(f)
    assert out_a == out_b
    assert a.to_dict() == b.to_dict()


def test_params_are_frozen() -> None:
    p = DetectorParams()
    try:
        p.trend_tau_s = 1.0  # type: ignore[misc]
    except AttributeError:
        return
    raise AssertionError("params must be frozen")
