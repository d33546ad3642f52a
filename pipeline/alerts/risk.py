"""Four-colour risk grades for sites and their territorial roll-up.

Site rule (documented in ``docs/ALERTS.md``):

1. base = the highest level among the site's *open* (not resolved) alerts, where the
   sensor-health kinds (``stale``, ``flatline``, ``fault``) count as ``blue`` at most:
   a blind sensor lowers confidence, it is not itself a hazard;
2. an unclosed hidden danger (orange/red reached, not yet rectified/verified/closed)
   keeps the site at least ``yellow``;
3. a major hazard source (``hazard_grade`` 1 or 2) raises an ``orange`` or ``red``
   base one step (capped at red);
4. ``risk_repeat_min`` or more threshold/rate/anomaly episodes opened in the last ``risk_history_s``
   raise a non-green grade one step (capped at red).

``None`` is green (no risk signal). Region grades are the maximum of their children.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from pipeline.alerts.params import LifecycleParams
from pipeline.model import LEVELS, Site, level_rank

RISK_SCHEMA = "ew.risk/1"
HEALTH_KINDS = frozenset({"stale", "flatline", "fault"})
# Episodes that count as "repeated" in the risk history: observed hazards only (a forecast
# re-opens once per target level during one ramp; health kinds are not hazards).
HISTORY_KINDS = frozenset({"threshold", "rate", "anomaly"})


def _level(rank: int) -> str | None:
    return None if rank < 0 else LEVELS[min(rank, len(LEVELS) - 1)]


def site_grade(
    alerts: list[dict[str, Any]],
    episodes: list[int],
    site: Site | None,
    ts: int,
    params: LifecycleParams,
) -> tuple[str | None, list[str], dict[str, int]]:
    """Grade, reasons and open-alert counts by level of one site at event time ``ts``."""
    counts: dict[str, int] = {}
    base = -1
    reasons: list[str] = []
    hidden = False
    for a in alerts:
        if a.get("hidden") is not None:
            hidden = True
        if a.get("resolved") is not None:
            continue
        lvl = a.get("level")
        if lvl is not None:
            counts[lvl] = counts.get(lvl, 0) + 1
        rank = level_rank(lvl)
        if a["kind"] in HEALTH_KINDS:
            rank = min(rank, 0) if lvl is not None else 0
        if rank > base:
            base = rank
    if base >= 0:
        reasons.append(f"open_{_level(base)}")
    if hidden and base < 1:
        base = 1
        reasons.append("unrectified_hidden_danger")
    grade = base
    if (
        base >= 2
        and site is not None
        and site.hazard_grade is not None
        and site.hazard_grade in params.major_hazard_grades
    ):
        grade += 1
        reasons.append(f"major_hazard_source_grade_{site.hazard_grade}")
    window = int(params.risk_history_s * 1000)
    recent = sum(1 for t in episodes if ts - window < t <= ts)
    if base >= 0 and recent >= params.risk_repeat_min:
        grade += 1
        reasons.append(f"repeated_episodes_{recent}")
    grade = min(grade, len(LEVELS) - 1)
    return _level(grade), reasons, dict(sorted(counts.items(), key=lambda kv: level_rank(kv[0])))


def risk_event(
    scope: str,
    ident: str,
    grade: str | None,
    previous: str | None,
    ts: int,
    reasons: list[str],
    open_alerts: dict[str, int],
    region: list[str],
    industry: str | None,
) -> dict[str, Any]:
    """A ``ew.risk/1`` event (emitted only when a grade changes)."""
    from pipeline.timeutil import to_rfc3339

    return {
        "schema": RISK_SCHEMA,
        "scope": scope,
        "id": ident,
        "grade": grade,
        "previous_grade": previous,  # schemas/risk.json
        "previous": previous,  # same value, short name used by the engine's callers
        "ts": to_rfc3339(ts),
        "ts_ms": ts,
        "reasons": reasons,
        "open_alerts": open_alerts,
        "region": region,
        "industry": industry,
    }


class RegionRollup:
    """County / city / province grades as the maximum of their sites' grades.

    Runs apart from the per-site work (in streaming: one single-partition agent), so it
    only sees site risk events. State: ``store[site_id] -> {grade, open_alerts, region}``
    (JSON-safe, injectable like the engine's stores) plus the last emitted region grades.
    """

    SCOPES = ("province", "city", "county")

    def __init__(self, store: MutableMapping[str, dict[str, Any]] | None = None) -> None:
        self.store: MutableMapping[str, dict[str, Any]] = store if store is not None else {}

    def update(self, site_event: dict[str, Any]) -> list[dict[str, Any]]:
        """Fold one site risk event in; return region risk events whose grade changed."""
        region = [str(x) for x in site_event.get("region") or []]
        site_id = str(site_event["id"])
        self.store[f"site:{site_id}"] = {
            "grade": site_event.get("grade"),
            "open_alerts": dict(site_event.get("open_alerts") or {}),
            "region": region,
        }
        ts = int(site_event["ts_ms"])
        out: list[dict[str, Any]] = []
        # innermost first: county, city, province
        for depth in range(len(region), 0, -1):
            prefix = region[:depth]
            scope = self.SCOPES[depth - 1]
            ident = "/".join(prefix)
            grade, counts, n_sites = self._aggregate(prefix)
            key = f"{scope}:{ident}"
            previous = (self.store.get(key) or {}).get("grade")
            if previous == grade:
                continue
            self.store[key] = {"grade": grade}
            reasons = [f"max_of_{n_sites}_sites"]
            out.append(risk_event(scope, ident, grade, previous, ts, reasons, counts, prefix, None))
        return out

    def _aggregate(self, prefix: list[str]) -> tuple[str | None, dict[str, int], int]:
        best, counts, n = -1, dict[str, int](), 0
        for key, value in self.store.items():
            if not key.startswith("site:") or value["region"][: len(prefix)] != prefix:
                continue
            n += 1
            best = max(best, level_rank(value["grade"]))
            for lvl, c in value["open_alerts"].items():
                counts[lvl] = counts.get(lvl, 0) + int(c)
        ordered = dict(sorted(counts.items(), key=lambda kv: level_rank(kv[0])))
        return _level(best), ordered, n
