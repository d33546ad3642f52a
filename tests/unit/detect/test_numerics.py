"""Numerical pieces against plain numpy references; batch path == per-record path."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.detect import (
    AnomalyScorer,
    BatchDetector,
    DetectorParams,
    check_stale,
    new_state,
    score_series,
    step,
)
from pipeline.detect import kernel as K
from pipeline.model import Quality, RateLimit, Reading, Sensor, Thresholds

from .conftest import T0, ch4, o2


def test_trend_matches_weighted_least_squares() -> None:
    rng = np.random.default_rng(0)
    t_ms = np.cumsum(rng.integers(5_000, 15_000, 80)).astype(float)
    y = 2.0 + 0.05 * t_ms / 60_000 + rng.normal(0, 0.01, 80)
    tau = 10.0
    v = K.initial_state()
    for k in range(80):
        dt = 0.0 if k == 0 else (t_ms[k] - t_ms[k - 1]) / 60_000
        b, a, t, r2, n = K.trend_update(v, K.TL, dt, y[k], tau, 1e9, True, K.ScalarOps)
    # reference: weights are products of tau/(tau+dt) decays back from the last sample
    tm = (t_ms - t_ms[-1]) / 60_000
    w = np.ones(80)
    for k in range(78, -1, -1):
        dt = (t_ms[k + 1] - t_ms[k]) / 60_000
        w[k] = w[k + 1] * tau / (tau + dt)
    X = np.c_[np.ones(80), tm]
    W = np.diag(w)
    coef = np.linalg.solve(X.T @ W @ X, X.T @ W @ y)
    resid = y - X @ coef
    var = (w * resid**2).sum() / (w.sum() - 2)
    se = np.sqrt(var / (w * (tm - (w * tm).sum() / w.sum()) ** 2).sum())
    assert b == pytest.approx(coef[1], rel=1e-9)
    assert a == pytest.approx(coef[0], rel=1e-9)
    assert n == pytest.approx(w.sum(), rel=1e-12)
    assert t == pytest.approx(coef[1] / se, rel=1e-6)
    ybar = (w * y).sum() / w.sum()
    assert r2 == pytest.approx(1 - (w * resid**2).sum() / (w * (y - ybar) ** 2).sum(), rel=1e-6)


def test_score_series_equals_score_one_and_is_causal() -> None:
    rng = np.random.default_rng(4)
    x = np.r_[rng.normal(0, 1, 500), rng.normal(8, 1, 100)]
    full = score_series(np.arange(600) * 1000, x)
    s = AnomalyScorer()
    one = [s.score_one(i * 1000, v) for i, v in enumerate(x)]
    assert full.tolist() == one
    assert score_series(np.arange(300) * 1000, x[:300]).tolist() == one[:300]
    assert np.all((full >= 0) & (full <= 1))
    assert np.all(full[: DetectorParams().anomaly_warmup_n] == 0.0)
    assert full[500] > 0.9 and np.quantile(full[50:500], 0.99) < 0.5


def test_scorer_roundtrip() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, 400)
    a = AnomalyScorer()
    ra = [a.score_one(0, v) for v in x]
    b = AnomalyScorer()
    rb = [b.score_one(0, v) for v in x[:123]]
    b = AnomalyScorer.from_dict(b.to_dict())
    rb += [b.score_one(0, v) for v in x[123:]]
    assert ra == rb


@settings(max_examples=40, deadline=None)
@given(st.floats(-1e6, 1e6, allow_nan=False), st.floats(0, 1e3, allow_nan=False))
def test_score_bounded_for_any_level_and_scale(level: float, scale: float) -> None:
    rng = np.random.default_rng(0)
    x = level + scale * rng.standard_t(2, 200)
    sc = score_series(np.zeros(200, dtype=np.int64), x)
    assert np.all(np.isfinite(sc)) and np.all((sc >= 0) & (sc <= 1))


def _sensors() -> list[Sensor]:
    plain = Sensor("S2/T-01", "S2", "temp", "C", 5.0, (-50.0, 150.0))
    delayed = Sensor(
        "S2/CO-01",
        "S2",
        "co",
        "ppm",
        10.0,
        (0.0, 1000.0),
        Thresholds("high", (("yellow", 24.0), ("red", 50.0)), 1.0, 20.0),
        RateLimit(5.0, "orange"),
    )
    return [ch4(rate=RateLimit(0.2, "yellow")), o2(), plain, delayed]


def test_batch_equals_per_record_on_random_multisensor_stream() -> None:
    rng = np.random.default_rng(42)
    sensors = _sensors() * 5  # 20 sensors (same config, separate state)
    sensors = [
        Sensor(
            f"{s.sensor_id}#{i}",
            s.site_id,
            s.metric,
            s.unit,
            s.interval_s,
            s.range,
            s.thresholds,
            s.rate_limit,
        )
        for i, s in enumerate(sensors)
    ]
    base = {"ch4": 0.4, "o2": 20.9, "temp": 40.0, "co": 10.0}
    m = 12000  # ~600 per sensor: past the level component's warm-up (256)
    idx = rng.integers(0, len(sensors), m)
    counts = np.zeros(len(sensors), dtype=np.int64)
    ts = np.empty(m, dtype=np.int64)
    vals = np.empty(m)
    qual = rng.choice([0, 0, 0, 0, 0, 0, 0, 0, 1, 2], m)
    for j, s_i in enumerate(idx):
        k = counts[s_i]
        counts[s_i] += 1
        s = sensors[s_i]
        ts[j] = T0 + k * 10_000 - (rng.integers(0, 30_000) if rng.random() < 0.03 else 0)
        drift = np.sin(k / 40.0) * {"ch4": 0.8, "o2": 2.5, "temp": 10, "co": 30}[s.metric]
        vals[j] = base[s.metric] + drift + rng.normal(0, 0.05) * (1 + (k % 97 == 0) * 50)
        if rng.random() < 0.01:
            vals[j] = 5000.0  # out of range
    qnames: list[Quality] = ["good", "uncertain", "bad"]
    states = [new_state(s, DetectorParams()) for s in sensors]
    expected = []
    for j in range(m):
        s = sensors[idx[j]]
        r = Reading(
            s.site_id, s.sensor_id, s.metric, float(vals[j]), int(ts[j]), quality=qnames[qual[j]]
        )
        states[idx[j]], fs = step(states[idx[j]], r, s, DetectorParams())
        expected.extend(fs)
    det = BatchDetector(sensors)
    got = []
    for a in range(0, m, 1000):  # several batches, sensors repeating inside each
        got.extend(
            det.update(idx[a : a + 1000], ts[a : a + 1000], vals[a : a + 1000], qual[a : a + 1000])
        )
    assert len(expected) > 50
    assert {f.kind for f in expected} >= {"threshold", "fault", "anomaly", "forecast"}
    assert got == expected
    for i, stt in enumerate(states):
        assert det.state(i).to_dict() == stt.to_dict()
    # the recurrence memory took part: excursion peaks were kept on both sides
    peaks = np.array([stt.v[K.A_PH : K.A_PL + 3] for stt in states])
    assert np.isfinite(peaks[:, :3]).any() and np.isfinite(peaks[:, 3:]).any()
    wm = int(ts.max()) + 10_000_000
    per_record = [
        f for i, s in enumerate(sensors) for f in check_stale(states[i], s, wm, DetectorParams())[1]
    ]
    assert len(per_record) == len(sensors)
    assert det.check_stale(wm) == per_record


def test_state_packs_exactly_and_compactly() -> None:
    from pipeline.detect import SensorState

    state = SensorState()
    state.v[K.A_MU] = 0.1 + 0.2  # not exact in decimal
    state.v[K.A_LO] = -0.0
    packed = state.to_dict()
    assert set(packed) == {"b"} and len(packed["b"]) <= 4 * (8 * K.N_STATE + 2) // 3
    back = SensorState.from_dict(json.loads(json.dumps(packed, allow_nan=False)))
    assert [x.hex() for x in back.v] == [x.hex() for x in state.v]  # NaN and -0.0 too
    legacy = {"v": [None if x != x else x for x in state.v]}  # the JSON-list form still reads
    assert [x.hex() for x in SensorState.from_dict(legacy).v] == [x.hex() for x in state.v]
    with pytest.raises(ValueError):
        SensorState.from_dict({"b": "AAAA"})  # 3 bytes: not whole floats
