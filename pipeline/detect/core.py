"""Per-record detection: ``new_state`` / ``step`` / ``check_stale`` over a compact state.

Decisions (documented in ``bench/README.md``):

- fault (quality ``bad`` or value outside ``range``) is level orange, never a threshold
  alarm; a faulted reading feeds no threshold, trend, rate, anomaly or learning.
- quality ``uncertain``: thresholds are evaluated (a real breach must alarm) but nothing
  is learnt and forecast / rate / anomaly / flatline episodes are held as they are.
- a late reading (ts <= newest seen ts: duplicates, out-of-order) is checked for fault and
  threshold only, its edges stamped with the newest seen ts so that per-sensor event time
  never goes backwards; it is never learnt. Older than ``late_tolerance_s``: ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pipeline.detect import kernel as K
from pipeline.detect.params import LEVEL_NAMES, DetectorParams
from pipeline.findings import Finding
from pipeline.model import Level, Reading, Sensor

_QUALITY = {"good": K.Q_GOOD, "uncertain": K.Q_UNCERTAIN, "bad": K.Q_BAD}
_FAULT_REASON = {K.FAULT_RANGE: "range", K.FAULT_QUALITY: "quality"}


@dataclass(slots=True)
class SensorState:
    """A sensor's whole detector state: a flat vector of floats (see ``kernel``)."""

    v: list[float] = field(default_factory=K.initial_state)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe and exact (``kernel.pack``: float64 bytes, base64)."""
        return K.pack(self.v)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SensorState:
        vals = K.upgrade(K.unpack(d))
        if len(vals) != K.N_STATE:
            raise ValueError(f"state has {len(vals)} fields, expected {K.N_STATE}")
        return cls(vals)

    def named(self) -> dict[str, float]:
        """Field name -> value (for debugging and docs)."""
        return dict(zip(K.FIELD_NAMES, self.v, strict=True))


def new_state(sensor: Sensor, params: DetectorParams) -> SensorState:
    """A fresh state (nothing learnt; every detector idle)."""
    return SensorState()


@lru_cache(maxsize=65536)
def sensor_config(sensor: Sensor) -> tuple[float, ...]:
    """The sensor's registry entry as the kernel's configuration vector (cached)."""
    c = [math.nan] * K.N_CONF
    th = sensor.thresholds
    sign = 1.0
    if th is not None:
        sign = -1.0 if th.direction == "low" else 1.0
        for name, lim in th.levels:
            c[K.C_L0 + LEVEL_NAMES.index(name)] = sign * float(lim)
        c[K.C_HYST] = float(th.hysteresis)
        c[K.C_DELAY] = float(th.delay_s) * 1000.0
    else:
        c[K.C_HYST] = 0.0
        c[K.C_DELAY] = 0.0
    c[K.C_SIGN] = sign
    if sensor.rate_limit is not None:
        c[K.C_RATE] = abs(float(sensor.rate_limit.per_minute))
        c[K.C_RATE_LVL] = float(LEVEL_NAMES.index(sensor.rate_limit.level))
    c[K.C_INTERVAL] = float(sensor.interval_s) * 1000.0
    if sensor.range is not None:
        c[K.C_LO], c[K.C_HI] = float(sensor.range[0]), float(sensor.range[1])
    return tuple(c)


def _lvl(rank: float) -> Level | None:
    return None if rank < 0 else LEVEL_NAMES[int(rank)]  # type: ignore[return-value]


def _f(x: Any) -> float | None:
    x = float(x)
    return None if x != x else x


def findings_from(sensor_id: str, o: dict[str, Any], c: Any) -> list[Finding]:
    """Turn one reading's kernel outputs (scalars) into edge findings."""
    out: list[Finding] = []
    ts = int(o["edge_ts"])
    value = float(o["value"])
    sign = float(c[K.C_SIGN])

    def limit(rank: float) -> float | None:
        return None if rank < 0 else _f(sign * float(c[K.C_L0 + int(rank)]))

    ft_old, ft_new = float(o["ft_old"]), float(o["ft_new"])
    if ft_new != ft_old:
        if ft_new > 0:
            rng = None if c[K.C_LO] != c[K.C_LO] else [float(c[K.C_LO]), float(c[K.C_HI])]
            out.append(
                Finding(
                    sensor_id,
                    "fault",
                    True,
                    ts,
                    "orange",
                    value,
                    evidence={"reason": _FAULT_REASON[ft_new], "range": rng},
                )
            )
        else:
            out.append(Finding(sensor_id, "fault", False, ts, "orange", value))
    if float(o["st_new"]) != float(o["st_old"]):
        out.append(Finding(sensor_id, "stale", False, ts, "yellow", value))
    th_old, th_new = float(o["th_old"]), float(o["th_new"])
    if th_new != th_old:
        if th_new >= 0:
            out.append(
                Finding(
                    sensor_id,
                    "threshold",
                    True,
                    ts,
                    _lvl(th_new),
                    value,
                    limit(th_new),
                    evidence={"previous_level": _lvl(th_old)},
                )
            )
        else:
            out.append(
                Finding(sensor_id, "threshold", False, ts, _lvl(th_old), value, limit(th_old))
            )
    fc_old, fc_new = float(o["fc_old"]), float(o["fc_new"])
    if fc_new != fc_old:
        if fc_new >= 0:
            ev = {
                "slope_per_min": float(o["slope"]),
                "t_stat": float(o["t_stat"]),
                "target_level": _lvl(fc_new),
            }
            out.append(
                Finding(
                    sensor_id,
                    "forecast",
                    True,
                    ts,
                    _lvl(fc_new),
                    value,
                    limit(fc_new),
                    eta_s=_f(o["eta"]),
                    evidence=ev,
                )
            )
        else:
            out.append(
                Finding(sensor_id, "forecast", False, ts, _lvl(fc_old), value, limit(fc_old))
            )
    if float(o["rt_new"]) != float(o["rt_old"]):
        active = float(o["rt_new"]) > 0.5
        lvl = _lvl(float(c[K.C_RATE_LVL]))
        rate_lim = _f(c[K.C_RATE])
        ev = {"slope_per_min": float(o["rate"])} if active else {}
        out.append(Finding(sensor_id, "rate", active, ts, lvl, value, rate_lim, evidence=ev))
    an_old, an_new = float(o["an_old"]), float(o["an_new"])
    if an_new != an_old:
        score = float(o["score"])
        if an_new >= 0:
            out.append(Finding(sensor_id, "anomaly", True, ts, _lvl(an_new), value, score=score))
        else:
            out.append(Finding(sensor_id, "anomaly", False, ts, _lvl(an_old), value, score=score))
    if float(o["fl_new"]) != float(o["fl_old"]):
        active = float(o["fl_new"]) > 0.5
        ev = {"since": int(o["fl_since"])} if active else {}
        out.append(Finding(sensor_id, "flatline", active, ts, "yellow", value, evidence=ev))
    return out


def step(
    state: SensorState, reading: Reading, sensor: Sensor, params: DetectorParams
) -> tuple[SensorState, list[Finding]]:
    """Advance all detectors of ``sensor`` by one reading; returns edge findings.

    Mutates and returns ``state``; pure with respect to everything else.
    """
    c = sensor_config(sensor)
    o = K.sensor_step(
        state.v,
        c,
        float(reading.ts),
        float(reading.value),
        _QUALITY[reading.quality],
        params,
        K.ScalarOps,
    )
    if not (
        o["ft_new"] != o["ft_old"]
        or o["st_new"] != o["st_old"]
        or o["th_new"] != o["th_old"]
        or o["fc_new"] != o["fc_old"]
        or o["rt_new"] != o["rt_old"]
        or o["an_new"] != o["an_old"]
        or o["fl_new"] != o["fl_old"]
    ):
        return state, []
    return state, findings_from(sensor.sensor_id, o, c)


def check_stale(
    state: SensorState, sensor: Sensor, watermark_ms: int, params: DetectorParams
) -> tuple[SensorState, list[Finding]]:
    """Open ``stale`` once the event-time watermark is past last_seen + factor*interval.

    The edge's ts is that deadline (deterministic), not the watermark. It clears on the
    sensor's next reading (in ``step``).
    """
    c = sensor_config(sensor)
    fire, due = K.stale_check(state.v, c, float(watermark_ms), params, K.ScalarOps)
    if not fire:
        return state, []
    return state, [
        Finding(
            sensor.sensor_id,
            "stale",
            True,
            int(due),
            "yellow",
            evidence={"last_ts": int(state.v[K.SEEN_TS])},
        )
    ]
