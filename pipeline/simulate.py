"""Deterministic telemetry simulator: a plausible Hubei site registry and its readings.

Pure core (standard library only): no wall clock, no I/O. ``build_registry``
writes the registry structure of the contract; ``generate`` lazily yields
telemetry dicts in event-time order, so the same iterator feeds a JSONL file
(``ewarn simulate --out``) or Kafka (``--to-kafka``) without holding the stream.

Normal operation never crosses a blue level: baseline + diurnal swing + slow
drift + noise stay below the first limit, so every alert a detector raises on
simulated data comes from an injected :class:`Incident`.

Each sensor draws from its own random stream seeded by ``(seed, sensor_id)``:
adding an incident or a site leaves every other sensor's readings unchanged.

Incident spec (``parse_incident``)::

    KIND:TARGET@START+DURATION[=MAGNITUDE][:LEVEL]
    ramp:HB-WH-0001/CH4-01@600+900          # ramp on one sensor from t=600 s, 900 s long
    step:HB-YC-0002/*@10m+30m=0.4:red       # every sensor of a site (fnmatch), 0.4 units
    silent:HB-WH-0003@1h+15m                # a whole site goes quiet

START and DURATION are seconds after the stream start, with an optional
``s``/``m``/``h`` suffix. TARGET is an fnmatch pattern matched against sensor
ids and site ids. MAGNITUDE is in the sensor's unit, towards danger (up for
``high`` sensors, down for ``low`` ones); LEVEL (default orange) picks the
limit used by default magnitudes and by ``chatter``. Kinds:

- ``ramp``: offset grows linearly from 0 to MAGNITUDE over the duration
  (default: 1.25 x the distance from the baseline to LEVEL, so LEVEL is crossed
  at ~80 % of the duration); back to normal afterwards.
- ``step``: constant offset MAGNITUDE; by default the value holds midway
  between LEVEL and the next limit (past red: 10 % beyond it), noise shrunk to
  stay inside that band.
- ``spike``: like step but short (it always covers at least one reading); by
  default it lands 5 % past the red limit.
- ``stuck``: the value freezes at the last reading before the start.
- ``silent``: no readings at all during the window.
- ``broken``: out of the physical range (MAGNITUDE = the value, default range
  max + half the span) with ``quality: bad``.
- ``chatter``: hovers around LEVEL, alternately just past and just short of it
  (MAGNITUDE = amplitude, default 1.5 x hysteresis or 2 % of the limit).
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal, get_args

from pipeline.model import LEVELS, Level
from pipeline.timeutil import to_rfc3339

IncidentKind = Literal["ramp", "step", "spike", "stuck", "silent", "broken", "chatter"]
INCIDENT_KINDS: tuple[IncidentKind, ...] = get_args(IncidentKind)

DAY_S = 86400.0
#: Local afternoon peak (14:00 China Standard Time = 06:00 UTC) of diurnal signals.
_PEAK_UTC_S = 6 * 3600.0


@dataclass(frozen=True, slots=True)
class Incident:
    """An injected disturbance on the sensors matching ``target`` (fnmatch on ids).

    Times are seconds after the stream start; ``magnitude`` is in the sensor's
    unit towards danger (``None``: a default derived from the thresholds).
    """

    kind: IncidentKind
    target: str
    start_s: float
    duration_s: float
    magnitude: float | None = None
    level: Level = "orange"

    def matches(self, sensor_id: str, site_id: str) -> bool:
        return fnmatchcase(sensor_id, self.target) or fnmatchcase(site_id, self.target)


_SPEC = re.compile(
    r"^(?P<kind>[a-z]+):(?P<target>[^@\s]+)@(?P<start>[0-9.]+[smh]?)"
    r"(?:\+(?P<dur>[0-9.]+[smh]?))?(?:=(?P<mag>[-+0-9.eE]+))?(?::(?P<level>[a-z]+))?$"
)
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0}


def _seconds(text: str) -> float:
    factor = _UNIT_S.get(text[-1], 1.0)
    number = text[:-1] if text[-1] in _UNIT_S else text
    return float(number) * factor


def parse_incident(text: str) -> Incident:
    """Parse ``KIND:TARGET@START+DURATION[=MAGNITUDE][:LEVEL]``; ``ValueError`` if bad.

    >>> parse_incident("ramp:HB-WH-0001/CH4-01@600+900")
    Incident(kind='ramp', target='HB-WH-0001/CH4-01', start_s=600.0, duration_s=900.0, \
magnitude=None, level='orange')
    """
    m = _SPEC.match(text.strip())
    if m is None:
        raise ValueError(
            f"bad incident spec {text!r}: expected KIND:TARGET@START+DURATION[=MAGNITUDE][:LEVEL]"
        )
    kind = m["kind"]
    if kind not in INCIDENT_KINDS:
        raise ValueError(f"unknown incident kind {kind!r} (one of {', '.join(INCIDENT_KINDS)})")
    level = m["level"] or "orange"
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r} in incident spec {text!r}")
    try:
        start = _seconds(m["start"])
        duration = _seconds(m["dur"]) if m["dur"] else 0.0
        magnitude = float(m["mag"]) if m["mag"] is not None else None
    except ValueError as exc:
        raise ValueError(f"bad number in incident spec {text!r}") from exc
    if not all(math.isfinite(x) for x in (start, duration)) or start < 0 or duration < 0:
        raise ValueError(f"bad times in incident spec {text!r}")
    if magnitude is not None and not math.isfinite(magnitude):
        raise ValueError(f"bad magnitude in incident spec {text!r}")
    return Incident(kind, m["target"], start, duration, magnitude, level)


# --------------------------------------------------------------------- profiles
@dataclass(frozen=True, slots=True)
class _Profile:
    """How one metric behaves: physical range, thresholds, and its normal signal."""

    code: str  # sensor id part, e.g. CH4
    metric: str
    unit: str
    interval_s: float
    range: tuple[float, float]
    direction: Literal["high", "low"]
    levels: tuple[float, float, float, float]  # blue, yellow, orange, red
    hysteresis: float
    delay_s: float
    baseline: tuple[float, float]  # drawn uniformly per sensor
    noise: float  # standard deviation
    diurnal: float  # amplitude of the daily swing (positive = higher in the afternoon)
    drift: float  # standard deviation of the slow (hours) drift
    decimals: int
    rate_limit: tuple[float, Level] | None = None


_PROFILES: dict[str, _Profile] = {
    p.metric: p
    for p in (
        # Coal mine: methane and CO limits follow the coal-mine safety regulations
        # (1.0 %vol alarm, 1.5 %vol power-off; CO 24 ppm); oxygen and wind alarm low.
        _Profile("CH4", "ch4", "%vol", 10, (0.0, 10.0), "high", (0.5, 0.75, 1.0, 1.5),
                 0.05, 0.0, (0.15, 0.3), 0.01, 0.02, 0.02, 2, (0.6, "yellow")),
        _Profile("CO", "co", "ppm", 10, (0.0, 1000.0), "high", (12.0, 24.0, 50.0, 100.0),
                 1.0, 0.0, (2.0, 5.0), 0.4, 0.5, 0.5, 1),
        _Profile("O2", "o2", "%vol", 30, (0.0, 25.0), "low", (20.0, 19.5, 19.0, 18.0),
                 0.1, 30.0, (20.6, 20.9), 0.04, 0.05, 0.03, 2),
        _Profile("WIND", "wind_speed", "m/s", 30, (0.0, 20.0), "low", (0.5, 0.4, 0.3, 0.25),
                 0.05, 60.0, (1.4, 2.4), 0.06, 0.1, 0.08, 2),
        # Hazardous chemicals: storage tanks and gas detection (GB 50493: first
        # alarm <= 25 %LEL, second <= 50 %LEL).
        _Profile("LEVEL", "tank_level", "%", 30, (0.0, 100.0), "high", (80.0, 85.0, 90.0, 95.0),
                 1.0, 30.0, (45.0, 60.0), 0.15, 6.0, 2.0, 1),
        _Profile("TEMP", "temperature", "°C", 30, (-40.0, 200.0), "high",
                 (45.0, 50.0, 60.0, 70.0), 1.0, 30.0, (22.0, 28.0), 0.2, 4.0, 1.0, 1),
        _Profile("PRES", "pressure", "MPa", 15, (0.0, 2.5), "high", (1.2, 1.3, 1.4, 1.5),
                 0.02, 0.0, (0.75, 0.9), 0.005, 0.03, 0.015, 3, (0.2, "yellow")),
        _Profile("H2S", "h2s", "ppm", 10, (0.0, 100.0), "high", (5.0, 10.0, 20.0, 50.0),
                 0.5, 0.0, (0.3, 0.8), 0.1, 0.1, 0.15, 2),
        _Profile("LEL", "flammable_gas", "%LEL", 10, (0.0, 100.0), "high",
                 (10.0, 20.0, 25.0, 50.0), 1.0, 0.0, (0.8, 2.0), 0.25, 0.3, 0.4, 1),
        # Construction: dust and noise have daytime peaks; crane load in % of rated.
        _Profile("PM10", "pm10", "mg/m3", 60, (0.0, 10.0), "high", (0.15, 0.25, 0.35, 0.5),
                 0.01, 120.0, (0.05, 0.07), 0.005, 0.02, 0.005, 3),
        _Profile("NOISE", "noise", "dB", 60, (30.0, 130.0), "high", (70.0, 75.0, 85.0, 95.0),
                 1.0, 60.0, (55.0, 58.0), 1.2, 5.0, 1.0, 1),
        _Profile("CRANE", "crane_load", "%", 10, (0.0, 150.0), "high",
                 (80.0, 90.0, 100.0, 110.0), 2.0, 0.0, (30.0, 40.0), 2.0, 10.0, 3.0, 1),
    )
}  # fmt: skip

# Sensors per site by industry: (metric, how many).
_LAYOUT: dict[str, tuple[tuple[str, int], ...]] = {
    "coal_mine": (("ch4", 3), ("co", 1), ("o2", 1), ("wind_speed", 1)),
    "hazardous_chemicals": (
        ("tank_level", 2), ("temperature", 1), ("pressure", 1), ("h2s", 1), ("flammable_gas", 1),
    ),
    "construction": (("pm10", 1), ("noise", 1), ("crane_load", 1)),
}  # fmt: skip

# Hubei: city code, city, [(county, suffix, admin division code)].
_HUBEI: tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...] = (
    ("WH", "Wuhan", (("Jiangxia", "District", "420115"), ("Hongshan", "District", "420111"),
                     ("Caidian", "District", "420114"), ("Huangpi", "District", "420116"),
                     ("Xinzhou", "District", "420117"), ("Dongxihu", "District", "420112"))),
    ("YC", "Yichang", (("Yiling", "District", "420506"), ("Xiling", "District", "420502"),
                       ("Dangyang", "City", "420582"), ("Zhijiang", "City", "420583"),
                       ("Xingshan", "County", "420526"))),
    ("XY", "Xiangyang", (("Xiangzhou", "District", "420607"), ("Fancheng", "District", "420606"),
                         ("Zaoyang", "City", "420683"), ("Nanzhang", "County", "420624"))),
    ("HS", "Huangshi", (("Daye", "City", "420281"), ("Xialu", "District", "420204"),
                        ("Yangxin", "County", "420222"))),
    ("JM", "Jingmen", (("Dongbao", "District", "420802"), ("Duodao", "District", "420804"),
                       ("Zhongxiang", "City", "420881"), ("Shayang", "County", "420822"))),
    ("SY", "Shiyan", (("Zhangwan", "District", "420303"), ("Yunyang", "District", "420304"),
                      ("Danjiangkou", "City", "420381"))),
    ("JZ", "Jingzhou", (("Shashi", "District", "421002"), ("Jingzhou", "District", "421003"),
                        ("Songzi", "City", "421087"))),
)  # fmt: skip

# Where each industry is plausibly found (city codes, with weights).
_INDUSTRY_CITIES: dict[str, tuple[tuple[str, float], ...]] = {
    "coal_mine": (("HS", 3), ("JM", 2), ("YC", 2), ("XY", 1), ("SY", 1)),
    "hazardous_chemicals": (("YC", 3), ("JM", 2), ("WH", 2), ("JZ", 2), ("XY", 1)),
    "construction": (("WH", 5), ("YC", 1), ("XY", 1), ("JZ", 1), ("SY", 1), ("HS", 1)),
}
_INDUSTRY_WEIGHTS = (("coal_mine", 0.3), ("hazardous_chemicals", 0.35), ("construction", 0.35))

_ROADS = ("Gaoxin", "Wenhua", "Xingye", "Huancheng", "Gongye", "Binjiang", "Jianshe", "Minzhu")
_CHEM_PRODUCTS = ("phosphate chemical", "fine chemical", "chlor-alkali", "fertiliser",
                  "pesticide intermediates", "LPG storage", "solvent storage")  # fmt: skip
_WORKS = ("metro station", "residential block", "bridge", "hospital", "school campus",
          "logistics park", "road widening")  # fmt: skip

_CREDIT_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def credit_code(division: str, rng: random.Random) -> str:
    """A unified social credit code (GB 32100-2015 layout) with a valid check character."""
    body = "91" + division + "".join(rng.choice(_CREDIT_CHARS) for _ in range(9))
    total = sum(_CREDIT_CHARS.index(c) * w for c, w in zip(body, _CREDIT_WEIGHTS, strict=True))
    check = (31 - total % 31) % 31
    return body + _CREDIT_CHARS[check]


def _weighted(rng: random.Random, options: Sequence[tuple[str, float]]) -> str:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def build_registry(n_sites: int, seed: int = 0) -> dict[str, Any]:
    """A registry dict (contract structure) of ``n_sites`` Hubei sites and their sensors.

    Deterministic in ``(n_sites, seed)``; site ``i`` is the same for any larger
    ``n_sites``. Industries: coal mines, hazardous chemicals, construction.
    """
    if n_sites < 0:
        raise ValueError("n_sites must be >= 0")
    cities = {code: (name, counties) for code, name, counties in _HUBEI}
    sites: list[dict[str, Any]] = []
    sensors: list[dict[str, Any]] = []
    for i in range(1, n_sites + 1):
        rng = random.Random(f"ewarn-site:{seed}:{i}")
        # The first three sites cover every industry, whatever the seed.
        industry = (
            _INDUSTRY_WEIGHTS[i - 1][0] if i <= len(_INDUSTRY_WEIGHTS)
            else _weighted(rng, _INDUSTRY_WEIGHTS)
        )  # fmt: skip
        city_code = _weighted(rng, _INDUSTRY_CITIES[industry])
        city, counties = cities[city_code]
        county, suffix, division = rng.choice(counties)
        site_id = f"HB-{city_code}-{i:04d}"
        if industry == "coal_mine":
            name = f"{county} No.{rng.randint(1, 9)} coal mine"
            unit = f"Hubei {county} Coal Industry Co., Ltd."
            regulator = "Hubei Bureau of the National Mine Safety Administration"
            hazard: int | None = rng.choice((2, 3, 3, 4))
        elif industry == "hazardous_chemicals":
            product = rng.choice(_CHEM_PRODUCTS)
            name = f"{county} {product} plant"
            unit = f"{city} {county} {product.title()} Co., Ltd."
            regulator = f"{city} Emergency Management Bureau"
            hazard = rng.choice((1, 2, 2, 3, 4))
        else:
            works = rng.choice(_WORKS)
            name = f"{county} {works} project (lot {rng.randint(1, 12)})"
            unit = f"Hubei {rng.choice(('Jianke', 'Chuhe', 'Hanjiang', 'Jingchu'))} Construction Group Co., Ltd."  # noqa: E501
            regulator = f"{county} {suffix} Housing and Urban-Rural Development Bureau"
            hazard = None
        sites.append(
            {
                "site_id": site_id,
                "name": name,
                "address": (
                    f"Hubei Province, {city}, {county} {suffix}, "
                    f"No. {rng.randint(1, 999)} {rng.choice(_ROADS)} Road"
                ),
                "unit": {"name": unit, "credit_code": credit_code(division, rng)},
                "industry": industry,
                "region": ["Hubei", city, county],
                "regulator": regulator,
                "hazard_grade": hazard,
            }
        )
        for metric, count in _LAYOUT[industry]:
            p = _PROFILES[metric]
            for k in range(1, count + 1):
                sensors.append(_sensor_record(site_id, p, k))
    return {"sites": sites, "sensors": sensors}


def _sensor_record(site_id: str, p: _Profile, k: int) -> dict[str, Any]:
    return {
        "sensor_id": f"{site_id}/{p.code}-{k:02d}",
        "site_id": site_id,
        "metric": p.metric,
        "unit": p.unit,
        "interval_s": p.interval_s,
        "range": [p.range[0], p.range[1]],
        "thresholds": {
            "direction": p.direction,
            "levels": dict(zip(LEVELS, p.levels, strict=True)),
            "hysteresis": p.hysteresis,
            "delay_s": p.delay_s,
        },
        "rate_limit": (
            None
            if p.rate_limit is None
            else {"per_minute": p.rate_limit[0], "level": p.rate_limit[1]}
        ),
    }


# -------------------------------------------------------------------- generator
class _SensorSim:
    """Signal state of one sensor: its own RNG, baseline, slow drift, incidents."""

    __slots__ = (
        "baseline",
        "decimals",
        "direction",
        "diurnal",
        "drift",
        "drift_sigma",
        "frozen",
        "hysteresis",
        "incidents",
        "interval_ms",
        "irng",
        "jitter_ms",
        "levels",
        "metric",
        "noise",
        "phase_ms",
        "range",
        "rng",
        "sensor_id",
        "site_id",
        "unit",
    )  # fmt: skip

    def __init__(self, rec: Mapping[str, Any], seed: int, incidents: list[Incident]) -> None:
        self.sensor_id: str = rec["sensor_id"]
        self.site_id: str = rec["site_id"]
        self.metric: str = rec["metric"]
        self.unit: str | None = rec.get("unit")
        digest = hashlib.sha256(f"{seed}:{self.sensor_id}".encode()).digest()
        self.rng = random.Random(int.from_bytes(digest[:8], "big"))
        # Incident effects draw from their own stream so that the normal signal
        # outside an incident window is identical with or without the incident.
        self.irng = random.Random(int.from_bytes(digest[8:16], "big"))
        self.interval_ms = max(1, round(float(rec.get("interval_s") or 60) * 1000))
        self.phase_ms = self.rng.randrange(self.interval_ms)
        self.jitter_ms = self.interval_ms // 20  # gateways are punctual to ~5 %
        rng_ = rec.get("range")
        thresholds = rec.get("thresholds") or {}
        levels = thresholds.get("levels") or {}
        self.levels: dict[str, float] = {k: float(v) for k, v in levels.items()}
        self.direction: str = thresholds.get("direction", "high")
        self.hysteresis = float(thresholds.get("hysteresis") or 0.0)
        profile = _PROFILES.get(self.metric)
        if profile is not None:
            lo, hi = profile.baseline
            self.baseline = self.rng.uniform(lo, hi)
            self.noise, self.diurnal = profile.noise, profile.diurnal
            self.drift_sigma, self.decimals = profile.drift, profile.decimals
            self.range = profile.range if rng_ is None else (float(rng_[0]), float(rng_[1]))
        else:
            self._generic_profile(rng_)
        self.drift = 0.0
        self.frozen: float | None = None
        self.incidents = incidents

    def _generic_profile(self, rng_: Sequence[float] | None) -> None:
        """Unknown metric: sit well clear of the first limit, noise ~1 % of the gap."""
        lo, hi = (0.0, 100.0) if rng_ is None else (float(rng_[0]), float(rng_[1]))
        self.range = (lo, hi)
        first = self.levels.get(LEVELS[0]) if self.levels else None
        if first is None:
            base, gap = (lo + hi) / 2, (hi - lo) / 4
        elif self.direction == "high":
            gap = max(first - lo, 1e-9) / 2
            base = first - gap
        else:
            gap = max(hi - first, 1e-9) / 2
            base = first + gap
        self.baseline = base
        self.noise, self.diurnal, self.drift_sigma = gap * 0.03, gap * 0.1, gap * 0.05
        self.decimals = 3

    def sign(self) -> float:
        return -1.0 if self.direction == "low" else 1.0

    def limit(self, level: str) -> float | None:
        return self.levels.get(level)

    def ramp_offset(self, level: str) -> float:
        """Default ramp size towards danger: 1.25 x the baseline's distance to ``level``."""
        limit = self.limit(level)
        if limit is None:
            return 5 * self.noise + abs(self.diurnal)
        return 1.25 * max((limit - self.baseline) * self.sign(), 0.0)

    def target(self, level: str, kind: str) -> tuple[float, float] | None:
        """Default (value, half-band) of a step/spike: inside ``level``'s band, or past red.

        A step holds midway between ``level`` and the next limit; a spike lands 5 %
        past red. The half-band bounds the noise so the value stays in its band
        even where the bands are narrower than the sensor's normal noise.
        """
        limit = self.limit(level)
        if limit is None:
            return None
        s = self.sign()
        if kind == "spike":
            red = self.limit("red")
            top = red if red is not None else limit
            return top + 0.05 * abs(top) * s, 0.04 * abs(top) + 1e-9
        idx = LEVELS.index(level)
        nxt = self.limit(LEVELS[idx + 1]) if idx + 1 < len(LEVELS) else None
        if nxt is None:
            nxt = limit + 0.2 * abs(limit) * s
        return (limit + nxt) / 2, abs(nxt - limit) / 2

    def normal(self, t_ms: int, dt_s: float) -> tuple[float, float]:
        """(mean, noise): baseline + diurnal swing + slow drift (mean-reverting, ~6 h)."""
        tau = 6 * 3600.0
        a = math.exp(-dt_s / tau)
        self.drift = a * self.drift + self.drift_sigma * math.sqrt(1 - a * a) * self.rng.gauss()
        bound = 2.0 * self.drift_sigma
        self.drift = min(max(self.drift, -bound), bound)
        phase = 2 * math.pi * ((t_ms / 1000.0 - _PEAK_UTC_S) % DAY_S) / DAY_S
        mean = self.baseline + self.diurnal * math.cos(phase) + self.drift
        return mean, self.noise * self.rng.gauss()

    def reading(self, t_ms: int, dt_s: float, rel_s: float) -> tuple[float, str] | None:
        """The (value, quality) at ``t_ms``; ``None`` when the sensor is silent."""
        mean, noise = self.normal(t_ms, dt_s)  # always advance the RNG: incidents stay local
        value = mean + noise
        quality = "good"
        lo, hi = self.range
        stuck = False
        for inc in self.incidents:
            end = inc.start_s + inc.duration_s
            window_end = end if inc.kind != "spike" else max(end, inc.start_s + dt_s * 0.999)
            if not inc.start_s <= rel_s < window_end:
                continue
            s = self.sign()
            mag = inc.magnitude
            if inc.kind == "silent":
                return None
            if inc.kind == "ramp":
                full = self.ramp_offset(inc.level) if mag is None else mag
                frac = (rel_s - inc.start_s) / inc.duration_s if inc.duration_s > 0 else 1.0
                value += s * full * frac
            elif inc.kind in ("step", "spike"):
                goal = self.target(inc.level, inc.kind) if mag is None else None
                if goal is not None:
                    centre, half_band = goal
                    scale = min(1.0, half_band / (3.0 * self.noise)) if self.noise > 0 else 0.0
                    value = centre + noise * scale
                else:
                    value += s * (mag if mag is not None else 5 * self.noise + abs(self.diurnal))
            elif inc.kind == "stuck":
                stuck = True
            elif inc.kind == "broken":
                value = hi + (hi - lo) / 2 if mag is None else mag
                quality = "bad"
            elif inc.kind == "chatter":
                limit = self.limit(inc.level)
                centre = limit if limit is not None else self.baseline
                amp = (
                    mag
                    if mag is not None
                    else max(1.5 * self.hysteresis, 0.02 * abs(centre), 3 * self.noise)
                )
                side = 1.0 if self.irng.random() < 0.5 else -1.0
                value = centre + s * side * amp * self.irng.uniform(0.5, 1.0)
        if stuck:
            if self.frozen is None:
                self.frozen = round(min(max(value, lo), hi), self.decimals)
            return self.frozen, quality
        if quality != "bad":
            value = min(max(value, lo), hi)
        value = round(value, self.decimals)
        self.frozen = value
        return value, quality


def generate(
    registry: Mapping[str, Any],
    start_ms: int,
    duration_s: float | None,
    incidents: Iterable[Incident] = (),
    seed: int = 0,
) -> Iterator[dict[str, Any]]:
    """Lazily yield telemetry dicts (contract form, ``ts`` RFC 3339) in event-time order.

    ``duration_s=None`` never ends (for a paced Kafka feed). Readings of one
    sensor are ``interval_s`` apart with up to 5 % jitter and a random phase;
    ties in event time are broken by registry order, so the output is fully
    deterministic in ``(registry, start_ms, duration_s, incidents, seed)``.
    """
    incident_list = list(incidents)
    end_ms = None if duration_s is None else start_ms + round(duration_s * 1000)
    sims: list[_SensorSim] = []
    heap: list[tuple[int, int, int]] = []  # (ts_ms, sensor index, tick)
    for idx, rec in enumerate(registry.get("sensors", [])):
        site_id = rec["site_id"]
        mine = [i for i in incident_list if i.matches(rec["sensor_id"], site_id)]
        sim = _SensorSim(rec, seed, mine)
        sims.append(sim)
        heap.append((start_ms + sim.phase_ms, idx, 0))
    heapq.heapify(heap)
    last_ts: list[int | None] = [None] * len(sims)
    while heap:
        ts, idx, tick = heapq.heappop(heap)
        if end_ms is not None and ts >= end_ms:
            continue  # this sensor is done; the others drain
        sim = sims[idx]
        prev = last_ts[idx]
        dt_s = sim.interval_ms / 1000.0 if prev is None else (ts - prev) / 1000.0
        last_ts[idx] = ts
        out = sim.reading(ts, dt_s, (ts - start_ms) / 1000.0)
        nominal = start_ms + sim.phase_ms + (tick + 1) * sim.interval_ms
        jitter = sim.rng.randint(-sim.jitter_ms, sim.jitter_ms) if sim.jitter_ms else 0
        heapq.heappush(heap, (max(ts + 1, nominal + jitter), idx, tick + 1))
        if out is None:
            continue
        value, quality = out
        yield {
            "site_id": sim.site_id,
            "sensor_id": sim.sensor_id,
            "metric": sim.metric,
            "value": value,
            "unit": sim.unit,
            "ts": to_rfc3339(ts),
            "quality": quality,
        }


__all__ = [
    "INCIDENT_KINDS",
    "Incident",
    "IncidentKind",
    "build_registry",
    "credit_code",
    "generate",
    "parse_incident",
]
