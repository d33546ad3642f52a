"""Throughput of the full detector set and state size per sensor.

Run: ``.venv/bin/python -m bench.core`` (default run well under 2 minutes).
"""

from __future__ import annotations

import json
import os
import platform
import time

import numpy as np

from pipeline.detect import BatchDetector, DetectorParams, new_state, step
from pipeline.detect import kernel as K
from pipeline.model import RateLimit, Reading, Sensor, Thresholds

T0 = 1_764_316_800_000


def make_sensors(n: int) -> list[Sensor]:
    th = Thresholds("high", (("blue", 0.5), ("yellow", 0.75), ("orange", 1.0), ("red", 1.5)), 0.05)
    return [
        Sensor(f"S/CH4-{i}", "S", "ch4", "%vol", 10.0, (0.0, 100.0), th, RateLimit(0.2))
        for i in range(n)
    ]


def per_record(n_sensors: int, n_readings: int) -> float:
    sensors = make_sensors(n_sensors)
    p = DetectorParams()
    states = [new_state(s, p) for s in sensors]
    rng = np.random.default_rng(0)
    vals = (0.3 + rng.normal(0, 0.01, n_readings)).tolist()
    readings = [
        Reading(
            "S", sensors[k % n_sensors].sensor_id, "ch4", vals[k], T0 + (k // n_sensors) * 10_000
        )
        for k in range(n_readings)
    ]
    t0 = time.perf_counter()
    for k, r in enumerate(readings):
        i = k % n_sensors
        states[i], _ = step(states[i], r, sensors[i], p)
    return n_readings / (time.perf_counter() - t0)


def batch(n_sensors: int, rounds: int, batch_rounds: int) -> float:
    det = BatchDetector(make_sensors(n_sensors))
    rng = np.random.default_rng(0)
    idx = np.tile(np.arange(n_sensors), batch_rounds)
    total = 0
    t0 = time.perf_counter()
    for b in range(rounds):
        ts = T0 + (b * batch_rounds + np.repeat(np.arange(batch_rounds), n_sensors)) * 10_000
        vals = 0.3 + rng.normal(0, 0.01, len(idx))
        det.update(idx, ts, vals)
        total += len(idx)
    return total / (time.perf_counter() - t0)


def state_bytes() -> tuple[int, int]:
    s = make_sensors(1)[0]
    p = DetectorParams()
    st = new_state(s, p)
    rng = np.random.default_rng(0)
    for k in range(500):
        st, _ = step(
            st, Reading("S", s.sensor_id, "ch4", 0.3 + rng.normal(0, 0.01), T0 + k * 10_000), s, p
        )
    return len(json.dumps(st.to_dict(), allow_nan=False)), K.N_STATE * 8


def main() -> None:
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
        f"(shared), Python {platform.python_version()}, numpy {np.__version__}; one core used"
    )
    js, raw = state_bytes()
    print(f"state per sensor: {K.N_STATE} float64 = {raw} B raw, {js} B as JSON (to_dict)")
    for n in (1, 1_000, 100_000):
        m = 20_000 if n < 100_000 else 200_000
        print(f"per-record  {n:>7d} sensors: {per_record(n, m):>11,.0f} readings/s")
    for n, rounds, br in ((1, 200, 50), (1_000, 20, 50), (100_000, 5, 4)):
        print(
            f"batch       {n:>7d} sensors: {batch(n, rounds, br):>11,.0f} readings/s "
            f"(batches of {n * br} readings)"
        )


if __name__ == "__main__":
    main()
