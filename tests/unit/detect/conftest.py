from __future__ import annotations

from collections.abc import Iterable

import pytest

from pipeline.detect import DetectorParams, new_state, step
from pipeline.findings import Finding
from pipeline.model import Quality, RateLimit, Reading, Sensor, Thresholds

T0 = 1_764_316_800_000


def ch4(delay_s: float = 0.0, rate: RateLimit | None = None) -> Sensor:
    th = Thresholds(
        "high",
        (("blue", 0.5), ("yellow", 0.75), ("orange", 1.0), ("red", 1.5)),
        0.05,
        delay_s,
    )
    return Sensor("S1/CH4-01", "S1", "ch4", "%vol", 10.0, (0.0, 100.0), th, rate)


def o2() -> Sensor:
    th = Thresholds("low", (("yellow", 19.5), ("orange", 18.5), ("red", 18.0)), 0.1, 0.0)
    return Sensor("S1/O2-01", "S1", "o2", "%vol", 10.0, (0.0, 25.0), th)


def run(
    sensor: Sensor,
    values: Iterable[float],
    params: DetectorParams | None = None,
    dt_ms: int = 10_000,
    quality: Quality = "good",
) -> list[tuple[int, Finding]]:
    """Feed values at a regular interval; return (index, finding) for every edge."""
    p = params or DetectorParams()
    st = new_state(sensor, p)
    out: list[tuple[int, Finding]] = []
    for i, v in enumerate(values):
        r = Reading(
            sensor.site_id,
            sensor.sensor_id,
            sensor.metric,
            float(v),
            T0 + i * dt_ms,
            quality=quality,
        )
        st, fs = step(st, r, sensor, p)
        out.extend((i, f) for f in fs)
    return out


@pytest.fixture
def params() -> DetectorParams:
    return DetectorParams()
