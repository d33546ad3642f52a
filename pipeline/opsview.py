"""What an operator sees: the alert board folded from ``ew.warnings`` events.

Pure (no I/O): the console (``ewarn tail``) and the demo feed it alert-event dicts
as they arrive, in any order and with at-least-once repeats, and render it.
Repeats are dropped by (alert_id, seq), the contract's dedup rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.model import KINDS, LEVEL_RANK

HIDDEN_DANGER_LEVELS = frozenset({"orange", "red"})


@dataclass(slots=True)
class BoardAlert:
    alert_id: str
    site_id: str
    kind: str
    level: str | None
    state: str  # last lifecycle event: opened, updated, escalated, acknowledged, resolved, closed
    message: str
    tier: int
    ts: str
    seq: int
    hidden_danger: bool
    notify: bool


@dataclass(slots=True)
class Board:
    """Open alerts by site plus the hidden-danger list, folded from events."""

    alerts: dict[str, BoardAlert] = field(default_factory=dict)
    seen: set[tuple[str, int]] = field(default_factory=set)
    duplicates: int = 0
    events: int = 0

    def apply(self, event: dict[str, Any]) -> bool:
        """Fold one event in; returns False for a repeat (already seen) or a stale seq."""
        alert_id = str(event.get("alert_id"))
        seq = int(event.get("seq") or 0)
        if (alert_id, seq) in self.seen:
            self.duplicates += 1
            return False
        self.seen.add((alert_id, seq))
        self.events += 1
        current = self.alerts.get(alert_id)
        if current is not None and seq < current.seq:
            return True  # older event arriving late: counted, but the newer state stands
        level = event.get("level")
        evidence = event.get("evidence") or {}
        was_hidden = current.hidden_danger if current else False
        self.alerts[alert_id] = BoardAlert(
            alert_id=alert_id,
            site_id=str(event.get("site_id")),
            kind=str(event.get("kind")),
            level=level,
            state=str(event.get("event")),
            message=str(event.get("message", "")),
            tier=int(event.get("tier") or 0),
            ts=str(event.get("ts")),
            seq=seq,
            hidden_danger=was_hidden or level in HIDDEN_DANGER_LEVELS,
            notify=bool(evidence.get("notify", True)),
        )
        return True

    def open_alerts(self) -> list[BoardAlert]:
        """Alerts whose condition has not been closed, most severe first."""
        items = [a for a in self.alerts.values() if a.state != "closed"]
        return sorted(items, key=lambda a: (-LEVEL_RANK.get(a.level or "", -1), a.site_id, a.ts))

    def active_alerts(self) -> list[BoardAlert]:
        """Open alerts whose condition is still present (not yet resolved)."""
        return [a for a in self.open_alerts() if a.state not in ("resolved", "closed")]

    def hidden_dangers(self) -> list[BoardAlert]:
        return [a for a in self.open_alerts() if a.hidden_danger]

    def by_site(self) -> dict[str, list[BoardAlert]]:
        out: dict[str, list[BoardAlert]] = {}
        for alert in self.open_alerts():
            out.setdefault(alert.site_id, []).append(alert)
        return out

    def counts_by_level(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for alert in self.active_alerts():
            key = alert.level or "none"
            out[key] = out.get(key, 0) + 1
        return out


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alert events one operator follows.

    Supervision is territorial and graded: a county's duty officer follows the sites
    of their county, a provincial desk may follow only orange and red. Events are
    matched one by one (an alert opened yellow joins an ``--min-level orange`` view
    when it is raised to orange); an empty field matches everything.
    """

    territory: tuple[str, ...] = ()  # a prefix of (province, city, county)
    min_level: str | None = None
    sites: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    notify_only: bool = False  # hide grouped, chattering and silenced events

    @classmethod
    def parse(
        cls, territory: str = "", min_level: str | None = None, sites: Iterable[str] = (),
        kinds: Iterable[str] = (), notify_only: bool = False,
    ) -> AlertFilter:
        """From command-line text; raises ValueError naming the bad value."""
        chain = tuple(part.strip() for part in territory.split("/") if part.strip())
        if len(chain) > 3:
            raise ValueError(f"territory {territory!r}: at most province/city/county")
        if min_level is not None and min_level not in LEVEL_RANK:
            raise ValueError(f"level {min_level!r}: expected one of {', '.join(LEVEL_RANK)}")
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown:
            raise ValueError(f"kind {unknown[0]!r}: expected one of {', '.join(KINDS)}")
        return cls(chain, min_level, frozenset(sites), frozenset(kinds), notify_only)

    def matches(self, event: dict[str, Any]) -> bool:
        if self.sites and event.get("site_id") not in self.sites:
            return False
        if self.kinds and event.get("kind") not in self.kinds:
            return False
        if self.min_level is not None:
            level = event.get("level")
            if not isinstance(level, str) or LEVEL_RANK.get(level, -1) < LEVEL_RANK[self.min_level]:
                return False
        if self.territory:
            chain = (event.get("responsible") or {}).get("territory") or []
            if tuple(chain[: len(self.territory)]) != self.territory:
                return False
        return not (self.notify_only and not (event.get("evidence") or {}).get("notify", True))
