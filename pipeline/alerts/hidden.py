"""The hidden-danger list: orange/red alerts until rectified, verified and closed.

It is not a separate store: an alert is on the list while its book entry has
``hidden`` set (it reached orange or red) and has not been closed (closing removes the
entry, and closing a hidden danger requires rectify and verify first). The list is a
query over the engine's site store, so the streaming side gets it from its table too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.model import Registry


class HiddenDangerList:
    """Read-only view: ``query`` filters by site, region prefix, industry and age."""

    def __init__(self, site_store: Mapping[str, dict[str, Any]], registry: Registry) -> None:
        self.site_store = site_store
        self.registry = registry

    def query(
        self,
        now_ms: int,
        site_id: str | None = None,
        region: Sequence[str] | None = None,
        industry: str | None = None,
        min_age_s: float | None = None,
    ) -> list[dict[str, Any]]:
        """Entries sorted oldest first, e.g. ``query(now, region=["Hubei", "Wuhan"])``.

        ``region`` is a prefix of [province, city, county]; ``min_age_s`` keeps entries
        on the list at least that long (age = now - entry time).
        """
        out: list[dict[str, Any]] = []
        prefix = list(region) if region is not None else None
        sites = [site_id] if site_id is not None else sorted(self.site_store)
        for sid in sites:
            data = self.site_store.get(sid)
            if data is None:
                continue
            site = self.registry.sites.get(sid)
            site_region = list(site.region) if site is not None else []
            if prefix is not None and site_region[: len(prefix)] != prefix:
                continue
            site_industry = site.industry if site is not None else None
            if industry is not None and site_industry != industry:
                continue
            for a in data["alerts"].values():
                if a["hidden"] is None:
                    continue
                age_s = (now_ms - int(a["hidden"])) / 1000
                if min_age_s is not None and age_s < min_age_s:
                    continue
                out.append(_entry(sid, a, age_s, site_region, site_industry))
        out.sort(key=lambda e: (e["entered_at_ms"], e["alert_id"]))
        return out


def _entry(
    site_id: str, a: dict[str, Any], age_s: float, region: list[str], industry: str | None
) -> dict[str, Any]:
    if a["verify"] is not None:
        status = "verified"
    elif a["rectify"] is not None:
        status = "rectified"
    elif a["dispatch"] is not None:
        status = "dispatched"
    elif a["ack"] is not None:
        status = "acknowledged"
    else:
        status = "new"
    return {
        "alert_id": a["id"],
        "site_id": site_id,
        "sensor_id": a["sensor"],
        "kind": a["kind"],
        "level": a["max_level"],
        "condition": "resolved" if a["resolved"] is not None else "active",
        "status": status,
        "tier": a["tier"],
        "entered_at_ms": int(a["hidden"]),
        "age_s": age_s,
        "rectify_due_ms": a["rect_due"],
        "region": region,
        "industry": industry,
    }
