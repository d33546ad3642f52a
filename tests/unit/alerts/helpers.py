"""A small registry and finding builders shared by the lifecycle tests."""

from __future__ import annotations

from typing import Any

from pipeline.alerts.book import BookContext, SiteBook
from pipeline.alerts.params import LifecycleParams, Silence
from pipeline.findings import Finding
from pipeline.model import Kind, Level, Registry, Sensor, Site, Thresholds, Unit

T0 = 1764316800000  # 2026-11-28T08:00:00Z
S = 1000
SITE = "HB-WH-0001"
CH4 = "HB-WH-0001/CH4-03"
CH4B = "HB-WH-0001/CH4-04"
O2 = "HB-WH-0001/O2-01"


def make_registry() -> Registry:
    sites = {
        "HB-WH-0001": Site(
            "HB-WH-0001",
            "Jiangxia No.2 coal mine",
            "Hubei Province, Wuhan, Jiangxia District, No. 1",
            Unit("Example Mining Co.", "91420115MA4K0000X1"),
            "coal_mine",
            ("Hubei", "Wuhan", "Jiangxia"),
            "Wuhan Emergency Management Bureau",
            2,
        ),
        "HB-WH-0002": Site(
            "HB-WH-0002",
            "Jiangxia chemical plant",
            "Hubei Province, Wuhan, Jiangxia District, No. 9",
            Unit("Example Chemicals Ltd."),
            "hazardous_chemicals",
            ("Hubei", "Wuhan", "Jiangxia"),
            "Wuhan Emergency Management Bureau",
            None,
        ),
        "HB-YC-0001": Site(
            "HB-YC-0001",
            "Yichang warehouse",
            "Hubei Province, Yichang, Xiling District, No. 3",
            Unit("Example Storage Co."),
            "warehousing",
            ("Hubei", "Yichang", "Xiling"),
            "Yichang Emergency Management Bureau",
            None,
        ),
    }
    ch4_th = Thresholds(
        "high", (("blue", 0.5), ("yellow", 0.75), ("orange", 1.0), ("red", 1.5)), 0.05, 0.0
    )
    o2_th = Thresholds("low", (("yellow", 19.5), ("orange", 18.5), ("red", 18.0)), 0.1, 0.0)
    sensors = {
        CH4: Sensor(CH4, SITE, "ch4", "%vol", 10.0, (0.0, 100.0), ch4_th),
        CH4B: Sensor(CH4B, SITE, "ch4", "%vol", 10.0, (0.0, 100.0), ch4_th),
        O2: Sensor(O2, SITE, "o2", "%vol", 10.0, (0.0, 30.0), o2_th),
        "HB-WH-0002/T-01": Sensor(
            "HB-WH-0002/T-01",
            "HB-WH-0002",
            "temp",
            "degC",
            60.0,
            (-40.0, 200.0),
            Thresholds("high", (("red", 80.0),)),
        ),
        "HB-YC-0001/T-01": Sensor(
            "HB-YC-0001/T-01",
            "HB-YC-0001",
            "temp",
            "degC",
            60.0,
            (-40.0, 200.0),
            Thresholds("high", (("red", 80.0),)),
        ),
    }
    return Registry(sites, sensors)


REGISTRY = make_registry()


def book(
    data: dict[str, Any] | None = None,
    params: LifecycleParams | None = None,
    silences: tuple[Silence, ...] = (),
    site: str = SITE,
) -> SiteBook:
    return SiteBook(site, data, BookContext(REGISTRY, params or LifecycleParams(), silences))


def on(
    ts: int,
    level: Level | None,
    value: float | None,
    sensor: str = CH4,
    kind: Kind = "threshold",
    threshold: float | None = None,
    **kw: Any,
) -> Finding:
    return Finding(sensor, kind, True, ts, level, value, threshold, **kw)


def off(
    ts: int,
    value: float | None = None,
    sensor: str = CH4,
    kind: Kind = "threshold",
    level: Level | None = None,
) -> Finding:
    return Finding(sensor, kind, False, ts, level, value)
