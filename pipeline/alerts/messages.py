"""Short human messages for alert events: what, how much, against which limit, where."""

from __future__ import annotations

from typing import Any

from pipeline.model import Sensor, Site

TIER_NAMES = ("enterprise", "county", "city", "province")


def fmt(value: float | None) -> str:
    """Compact number: ``1.0`` stays ``1.0``, ``1.0234`` becomes ``1.023``.

    >>> fmt(1.0), fmt(1.02), fmt(150), fmt(0.0201)
    ('1.0', '1.02', '150.0', '0.0201')
    """
    if value is None:
        return "?"
    v = float(value)
    if v.is_integer() and abs(v) < 1e15:
        return f"{v:.1f}"
    return f"{v:.4g}"


def where(site: Site | None, sensor_id: str | None, site_id: str) -> str:
    """``at <site name> (<standard address>) [<sensor>]``: the place a responder goes to."""
    tag = sensor_id or site_id
    if site is None:
        return f"at {tag}"
    return f"at {site.name} ({site.address}) [{tag}]"


def condition(a: dict[str, Any], sensor: Sensor | None, cleared: bool = False) -> str:
    """The condition itself, from the alert's latest evidence (no place, no event)."""
    metric = str(a.get("metric") or "").upper() or "SENSOR"
    unit = sensor.unit if sensor is not None else ""
    u = f" {unit}" if unit else ""
    kind, level = a["kind"], a.get("level") or "?"
    value, thr, ev = a.get("value"), a.get("threshold"), a.get("ev") or {}
    high = sensor is None or sensor.thresholds is None or sensor.thresholds.direction == "high"
    if kind == "threshold":
        if cleared:
            back = "below" if high else "above"
            return f"{metric} {fmt(value)}{u} back {back} {level} limit {fmt(thr)}"
        op = ">=" if high else "<="
        return f"{metric} {fmt(value)}{u} {op} {level} limit {fmt(thr)}"
    if kind == "forecast":
        slope = ev.get("slope_per_min")
        trend = (
            "rising"
            if (slope is None and high) or (slope is not None and slope > 0)
            else ("falling")
        )
        rate = f" {fmt(abs(slope))}{u}/min" if isinstance(slope, int | float) else ""
        eta = a.get("eta_s")
        when = f" in {max(0, round(eta / 60))} min" if isinstance(eta, int | float) else ""
        return f"{metric} {trend}{rate}, expected to reach {level} {fmt(thr)}{when}"
    if kind == "rate":
        slope = ev.get("slope_per_min")
        rate = fmt(abs(slope)) if isinstance(slope, int | float) else "?"
        return f"{metric} changing {rate}{u}/min, past {level} rate limit {fmt(thr)}{u}/min"
    if kind == "anomaly":
        score = a.get("score")
        return f"{metric} {fmt(value)}{u} anomalous (score {fmt(score)}), {level}"
    if kind == "stale":
        interval = f", expected every {fmt(sensor.interval_s)} s" if sensor is not None else ""
        last = ev.get("last_ts")
        return f"{metric} no data since {_clock(last)}{interval}"
    if kind == "flatline":
        return f"{metric} stuck at {fmt(value)}{u}"
    if kind == "fault":
        if ev.get("reason") == "range" and sensor is not None and sensor.range is not None:
            lo, hi = sensor.range
            return f"{metric} sensor fault: {fmt(value)}{u} outside range [{fmt(lo)}, {fmt(hi)}]"
        if ev.get("reason") == "quality":
            return f"{metric} sensor fault: quality bad (value {fmt(value)}{u})"
        return f"{metric} sensor fault (value {fmt(value)}{u})"
    return f"{metric} {kind} {level}"


def _clock(ms: object) -> str:
    from pipeline.timeutil import to_rfc3339

    return to_rfc3339(ms) if isinstance(ms, int) else "?"


def message(
    event: str,
    a: dict[str, Any],
    site: Site | None,
    sensor: Sensor | None,
    site_id: str,
    extra: dict[str, Any] | None = None,
) -> str:
    """The event's one-line message, prefixed by what happened when it is not news."""
    cleared = event == "resolved" or a.get("resolved") is not None
    body = f"{condition(a, sensor, cleared)} {where(site, a.get('sensor'), site_id)}"
    extra = extra or {}
    if event == "resolved":
        return f"cleared: {body}"
    if event == "escalated":
        tier = int(a.get("tier", 0))
        to = TIER_NAMES[min(tier, len(TIER_NAMES) - 1)]
        if extra.get("reason") == "rectification_overdue":
            why = "rectification overdue"
        else:
            why = f"not acknowledged within {fmt(extra.get('deadline_s'))} s"
        return f"escalated to {to} (tier {tier}), {why}: {body}"
    if event == "acknowledged":
        return f"acknowledged by {extra.get('by', '?')}: {body}"
    if event == "closed":
        return f"closed by {extra.get('by', '?')}: {body}"
    if event == "updated" and "action" in extra:
        return f"{extra['action']} by {extra.get('by', '?')}: {body}"
    return body
