"""Quiet day: normal telemetry only, so every alert is a false alert.

    .venv/bin/python bench/quiet_day.py [--sensors 200] [--hours 24] [--interval 60]

Generates a day of plausible, incident-free readings (measurement noise, sensor
resolution, diurnal swing, slow random-walk drift) for gas, oxygen, temperature,
pressure and level sensors, runs them through the ``Engine`` exactly as
``ewarn detect`` does, and reports opened alerts per 1,000 sensor-hours by kind.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections import Counter
from dataclasses import dataclass

from pipeline.engine import Engine
from pipeline.model import Reading, Registry, Sensor, Site, Thresholds, Unit

T0 = 1764316800000  # 2025-11-28T08:00:00Z


@dataclass(frozen=True)
class Profile:
    metric: str
    unit: str
    base: tuple[float, float]  # baseline drawn uniformly in this range
    noise: float  # white measurement noise (sigma)
    resolution: float  # reported resolution (values are rounded to it)
    diurnal: float  # amplitude of the daily swing
    walk: float  # random-walk step sigma per reading (slow drift)
    pull: float  # mean reversion of the drift per reading
    thresholds: Thresholds
    range: tuple[float, float]


PROFILES = (
    Profile(
        "ch4",
        "%vol",
        (0.05, 0.3),
        0.01,
        0.01,
        0.02,
        0.002,
        0.01,
        Thresholds("high", (("blue", 0.5), ("yellow", 0.75), ("orange", 1.0), ("red", 1.5)), 0.05),
        (0.0, 100.0),
    ),
    Profile(
        "co",
        "ppm",
        (2.0, 8.0),
        0.5,
        0.1,
        1.0,
        0.05,
        0.01,
        Thresholds("high", (("yellow", 24.0), ("orange", 50.0), ("red", 100.0)), 1.0),
        (0.0, 1000.0),
    ),
    Profile(
        "o2",
        "%vol",
        (20.7, 20.95),
        0.03,
        0.01,
        0.05,
        0.003,
        0.02,
        Thresholds("low", (("yellow", 19.5), ("orange", 18.5), ("red", 18.0)), 0.1),
        (0.0, 25.0),
    ),
    Profile(
        "temperature",
        "degC",
        (18.0, 35.0),
        0.2,
        0.1,
        4.0,
        0.05,
        0.005,
        Thresholds("high", (("yellow", 60.0), ("orange", 70.0), ("red", 80.0)), 1.0),
        (-40.0, 200.0),
    ),
    Profile(
        "pressure",
        "MPa",
        (0.8, 1.6),
        0.005,
        0.001,
        0.02,
        0.001,
        0.01,
        Thresholds("high", (("yellow", 2.2), ("orange", 2.4), ("red", 2.5)), 0.02),
        (0.0, 4.0),
    ),
    Profile(
        "level",
        "%",
        (30.0, 70.0),
        0.3,
        0.1,
        3.0,
        0.2,
        0.002,
        Thresholds("high", (("yellow", 85.0), ("orange", 90.0), ("red", 95.0)), 1.0),
        (0.0, 100.0),
    ),
)


def make_registry(n_sensors: int, interval_s: float, per_site: int = 10) -> Registry:
    sites: dict[str, Site] = {}
    sensors: dict[str, Sensor] = {}
    for i in range(n_sensors):
        site_id = f"QD-{i // per_site:04d}"
        if site_id not in sites:
            sites[site_id] = Site(
                site_id,
                f"Quiet site {site_id}",
                f"Address of {site_id}",
                Unit(f"Operator of {site_id}"),
                "hazardous_chemicals",
                ("Hubei", "Wuhan", f"County{i // (per_site * 5)}"),
                "Wuhan Emergency Management Bureau",
                2,
            )
        p = PROFILES[i % len(PROFILES)]
        sid = f"{site_id}/{p.metric.upper()}-{i:04d}"
        sensors[sid] = Sensor(sid, site_id, p.metric, p.unit, interval_s, p.range, p.thresholds)
    return Registry(sites, sensors)


def readings(registry: Registry, hours: float, interval_s: float, seed: int) -> list[Reading]:
    """All readings in arrival order (time-major, sensors in registry order)."""
    rng = random.Random(seed)
    sensors = list(registry.sensors.values())
    prof = {p.metric: p for p in PROFILES}
    state = []
    for s in sensors:
        p = prof[s.metric]
        state.append([rng.uniform(*p.base), 0.0, rng.uniform(0, 2 * math.pi)])
    n = int(hours * 3600 / interval_s)
    out: list[Reading] = []
    for k in range(n):
        ts = T0 + int(k * interval_s * 1000)
        phase = 2 * math.pi * (k * interval_s) / 86400.0
        for s, st in zip(sensors, state, strict=True):
            p = prof[s.metric]
            st[1] += rng.gauss(0, p.walk) - p.pull * st[1]
            v = st[0] + st[1] + p.diurnal * math.sin(phase + st[2]) + rng.gauss(0, p.noise)
            lo, hi = s.range or (-math.inf, math.inf)
            v = min(max(round(v / p.resolution) * p.resolution, lo), hi)
            out.append(Reading(s.site_id, s.sensor_id, s.metric, round(v, 6), ts, s.unit))
    return out


def run(n_sensors: int, hours: float, interval_s: float, seed: int = 7) -> dict[str, object]:
    registry = make_registry(n_sensors, interval_s)
    data = readings(registry, hours, interval_s, seed)
    engine = Engine(registry)
    opened: Counter[str] = Counter()
    by_metric: Counter[tuple[str, str]] = Counter()
    levels: Counter[str] = Counter()
    t = time.perf_counter()
    for r in data:
        for e in engine.on_reading(r).alerts:
            if e.event == "opened":
                opened[e.kind] += 1
                by_metric[(e.kind, e.metric or "")] += 1
                levels[e.level or "none"] += 1
    if engine.watermark_ms is not None:
        for e in engine.on_watermark(engine.watermark_ms).alerts:
            if e.event == "opened":
                opened[e.kind] += 1
    elapsed = time.perf_counter() - t
    sensor_hours = n_sensors * hours
    return {
        "readings": len(data),
        "sensor_hours": sensor_hours,
        "opened": dict(opened),
        "per_1000_sensor_hours": {k: 1000 * v / sensor_hours for k, v in opened.items()},
        "total_per_1000_sensor_hours": 1000 * sum(opened.values()) / sensor_hours,
        "by_kind_metric": {f"{k}/{m}": v for (k, m), v in sorted(by_metric.items())},
        "levels": dict(levels),
        "seconds": elapsed,
        "readings_per_s": len(data) / elapsed if elapsed else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sensors", type=int, default=200)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--interval", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    res = run(a.sensors, a.hours, a.interval, a.seed)
    for k, v in res.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
