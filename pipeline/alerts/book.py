"""One site's alert book: episodes, dispositions, deadlines, flood control and risk.

The book is a *view* over one JSON-safe dict (``site_store[site_id]``) so that the
streaming side can keep it in a Faust table; every mutation goes through this class and
marks it ``dirty`` so that the caller writes the entry back only when it changed.

Time rules (see ``docs/ALERTS.md``): everything happening to a site at event time ``t``
(a finding, a disposition, the watermark passing ``t``) first fires the site's timers due
strictly before ``t``, in deadline order, each stamped with its deadline. The events of a
site therefore depend only on its own inputs in order, never on when a watermark was seen.
One bound: a finding (or disposition) at ``t`` proves only its own sensor's time. The
other sensors' timers fire at most up to the site's ``horizon`` (its event-time
watermark): in streaming a site's readings come from several sources at their own pace,
and a fast source's reading at ``t`` must not escalate an alert whose clearing reading
(earlier than ``t``) is still on its way from a slower one. Offline the horizon is the
latest reading, never earlier than ``t``, so the bound changes nothing there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from pipeline.alerts.messages import message
from pipeline.alerts.params import LifecycleParams, Silence
from pipeline.alerts.risk import HISTORY_KINDS, risk_event, site_grade
from pipeline.findings import Finding
from pipeline.model import (
    AlertEvent,
    Disposition,
    EventType,
    Kind,
    Level,
    Registry,
    Responsible,
    level_rank,
)

# Rejection reason codes for dispositions.
UNKNOWN_ALERT = "unknown_alert"
MISSING_BY = "missing_by"
ILLEGAL_TRANSITION = "illegal_transition"
NOT_RESOLVED = "not_resolved"
UNKNOWN_ACTION = "unknown_action"


@dataclass(frozen=True, slots=True)
class BookContext:
    """What a book needs besides its own state: registry, parameters, silences."""

    registry: Registry
    params: LifecycleParams
    silences: Sequence[Silence] = ()


def _evidence(f: Finding) -> dict[str, Any]:
    """The detector's evidence kept on the alert; the level change is per event instead."""
    return {k: v for k, v in f.evidence.items() if k != "previous_level"}


def empty_site() -> dict[str, Any]:
    """The JSON-safe state of a site with no alert history."""
    return {
        "alerts": {},  # alert_id -> alert state (open, resolved-not-closed)
        "active": {},  # "sensor|kind" -> alert_id of the current (unresolved) episode
        "opens": {},  # "sensor|kind" -> recent opening times (chatter window)
        "leaders": [],  # [alert_id, opening ts, level rank] of recent flood-group leaders
        "episodes": [],  # opening times of hazard episodes (risk history)
        "risk": None,  # last emitted site grade
        "due": None,  # earliest timer (ms) or None: lets the engine skip idle sites
    }


class SiteBook:
    """Lifecycle of all alerts of one site. Collects events in ``events`` / ``risks``."""

    def __init__(self, site_id: str, data: dict[str, Any] | None, ctx: BookContext) -> None:
        self.site_id = site_id
        self.d: dict[str, Any] = data if data is not None else empty_site()
        self.ctx = ctx
        self.p = ctx.params
        self.dirty = False
        self.events: list[AlertEvent] = []
        self.risks: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ timers
    def _esc_due(self, a: dict[str, Any]) -> int | None:
        if a["ack"] is not None or a["tier"] >= self.p.max_tier:
            return None
        if a["resolved"] is not None and not (
            self.p.escalate_resolved_hidden and a["hidden"] is not None
        ):
            return None
        deadline = self.p.ack_deadline_ms(a["level"])
        if deadline is None:
            return None
        # A level rise never postpones a deadline; a drop extends it.
        return max(int(a["esc_base"]) + deadline, int(a["level_since"]))

    def _rect_due(self, a: dict[str, Any]) -> int | None:
        if a["rect_due"] is None or a["rect_n"] >= self.p.max_rectify_escalations:
            return None
        return int(a["rect_due"])

    def _prune_due(self, a: dict[str, Any]) -> int | None:
        if a["resolved"] is None or a["hidden"] is not None:
            return None
        return int(a["resolved"]) + int(self.p.retain_resolved_s * 1000)

    def _timers(self) -> list[tuple[int, int, str]]:
        """All pending timers as (due, order, alert_id); order breaks ties stably."""
        out: list[tuple[int, int, str]] = []
        for aid, a in self.d["alerts"].items():
            for order, due in enumerate((self._esc_due(a), self._rect_due(a), self._prune_due(a))):
                if due is not None:
                    out.append((due, order, aid))
        eps = self.d["episodes"]
        if len(eps) >= self.p.risk_repeat_min:
            out.append((min(eps) + int(self.p.risk_history_s * 1000), 3, ""))
        return out

    def fire_due(self, until: int, horizon: int | None = None, sensor: str | None = None) -> None:
        """Fire every timer due strictly before ``until``, earliest first.

        With a ``horizon``, timers at or past it fire only for ``sensor``'s own alerts
        (see the module doc: ``until`` is certain for that sensor only).
        """
        if self.d["due"] is None or self.d["due"] >= until:
            return
        alerts = self.d["alerts"]

        def known(t: tuple[int, int, str]) -> bool:
            if t[0] >= until:
                return False
            if horizon is None or t[0] < horizon:
                return True
            return bool(t[2]) and sensor is not None and alerts[t[2]]["sensor"] == sensor

        while True:
            timers = [t for t in self._timers() if known(t)]
            if not timers:
                break
            due, order, aid = min(timers)
            if order == 3:
                window = int(self.p.risk_history_s * 1000)
                self.d["episodes"] = [t for t in self.d["episodes"] if t > due - window]
                self.dirty = True
            else:
                a = self.d["alerts"][aid]
                if order == 0:
                    a["tier"] += 1
                    a["esc_base"] = due
                    deadline = self.p.ack_deadline_ms(a["level"])
                    extra = {
                        "reason": "unacknowledged",
                        "deadline_s": None if deadline is None else deadline / 1000,
                    }
                    self._emit(a, "escalated", due, extra)
                elif order == 1:
                    a["tier"] = min(a["tier"] + 1, self.p.max_tier)
                    a["rect_n"] += 1
                    a["rect_due"] = due + int(self.p.rectify_deadline_s * 1000)
                    self._emit(a, "escalated", due, {"reason": "rectification_overdue"})
                else:
                    self._drop(aid)
                self.dirty = True
            self._risk(due)
        self._refresh_due()

    def _refresh_due(self) -> None:
        timers = self._timers()
        due = min(t[0] for t in timers) if timers else None
        if due != self.d["due"]:
            self.d["due"] = due
            self.dirty = True

    def _drop(self, aid: str) -> None:
        a = self.d["alerts"].pop(aid)
        key = f"{a['sensor']}|{a['kind']}"
        if self.d["active"].get(key) == aid:
            del self.d["active"][key]
        self.dirty = True

    # ---------------------------------------------------------------- findings
    def apply_finding(self, f: Finding, metric: str | None, horizon: int | None = None) -> None:
        """Turn one detector edge into opened / updated / resolved.

        ``horizon``: the site's event-time watermark, if it may lag ``f.ts`` (streaming).
        """
        self.fire_due(f.ts, horizon, f.sensor_id)
        key = f"{f.sensor_id}|{f.kind}"
        aid = self.d["active"].get(key)
        if f.active:
            if aid is None:
                self._open(f, key, metric)
            else:
                self._update(self.d["alerts"][aid], f)
        elif aid is not None:
            self._resolve(self.d["alerts"][aid], f, key)
        else:
            return  # a clear without an open episode (e.g. state recovered): nothing to say
        self._risk(f.ts)
        self._refresh_due()

    def _open(self, f: Finding, key: str, metric: str | None) -> None:
        p, ts = self.p, f.ts
        aid = f"{f.sensor_id}:{f.kind}:{ts}"
        n = 1
        while aid in self.d["alerts"]:  # same sensor/kind re-opened within one ms
            n += 1
            aid = f"{f.sensor_id}:{f.kind}:{ts}#{n}"
        opens = [t for t in self.d["opens"].get(key, []) if t > ts - p.chatter_window_s * 1000]
        opens.append(ts)
        self.d["opens"][key] = opens
        chatter = len(opens) > p.chatter_max_opens
        a: dict[str, Any] = {
            "id": aid,
            "kind": f.kind,
            "sensor": f.sensor_id,
            "metric": metric,
            "level": f.level,
            "max_level": f.level,
            "started": ts,
            "level_since": ts,
            "esc_base": ts,
            "seq": 0,
            "tier": 0,
            "value": f.value,
            "threshold": f.threshold,
            "score": f.score,
            "eta_s": f.eta_s,
            "ev": _evidence(f),
            "resolved": None,
            "ack": None,
            "dispatch": None,
            "rectify": None,
            "verify": None,
            "hidden": None,
            "rect_due": None,
            "rect_n": 0,
            "group": None,
            "glevel": -1,
            "chatter": chatter,
        }
        silenced = self._silence(a, ts) is not None
        leader = self._leader_for(aid, ts, int(p.group_window_s * 1000))
        if leader is not None:
            a["group"], a["glevel"] = leader[0], int(leader[2])
        elif not chatter and not silenced:
            # only a notifying alert may lead a group: its notification covers the others
            self._add_leader(aid, ts, level_rank(f.level))
        if f.kind in HISTORY_KINDS:
            self.d["episodes"].append(ts)
        self.d["alerts"][aid] = a
        self.d["active"][key] = aid
        self._maybe_hidden(a, ts)
        self.dirty = True
        self._emit(a, "opened", ts)

    def _maybe_hidden(self, a: dict[str, Any], ts: int) -> None:
        # A forecast is a prediction, not a found danger: the breach it predicts enters
        # the list through its own threshold alert.
        if a["kind"] == "forecast":
            return
        if a["hidden"] is None and level_rank(a["level"]) >= level_rank("orange"):
            a["hidden"] = ts
            a["rect_due"] = ts + int(self.p.rectify_deadline_s * 1000)

    def _update(self, a: dict[str, Any], f: Finding) -> None:
        extra: dict[str, Any] = {}
        if f.level != a["level"]:
            extra["previous_level"] = a["level"]
            a["level"] = f.level
            a["level_since"] = f.ts
            if level_rank(f.level) > level_rank(a["max_level"]):
                a["max_level"] = f.level
        for name in ("value", "threshold", "score", "eta_s"):
            a[name] = getattr(f, name)
        a["ev"] = _evidence(f)
        self._maybe_hidden(a, f.ts)
        self.dirty = True
        self._emit(a, "updated", f.ts, extra)

    def _resolve(self, a: dict[str, Any], f: Finding, key: str) -> None:
        a["resolved"] = f.ts
        # A threshold clear reports the value back inside the limit; for the other
        # kinds the evidence stays the condition's (a fault's clear value is not a fault).
        if f.value is not None and a["kind"] == "threshold":
            a["value"] = f.value
        del self.d["active"][key]
        self.dirty = True
        self._emit(a, "resolved", f.ts)

    # ------------------------------------------------------------ dispositions
    def apply_disposition(self, d: Disposition, horizon: int | None = None) -> str | None:
        """Apply an operator action; return a rejection reason code or ``None``.

        ``horizon`` as for findings: the action's time is certain for its own alert's
        sensor only.
        """
        a = self.d["alerts"].get(d.alert_id)
        self.fire_due(d.at, horizon, None if a is None else a["sensor"])
        a = self.d["alerts"].get(d.alert_id)  # a timer may have pruned it
        if a is None:
            return UNKNOWN_ALERT
        if not isinstance(d.by, str) or not d.by.strip():
            return MISSING_BY
        reason = self._check(a, d.action)
        if reason is not None:
            return reason
        extra = {"action": d.action, "by": d.by, "at_ms": d.at}
        if d.note:
            extra["note"] = d.note
        if d.action == "acknowledge":
            a["ack"] = d.at
            self._emit(a, "acknowledged", d.at, {"disposition": extra, "by": d.by})
        elif d.action == "close":
            self._emit(a, "closed", d.at, {"disposition": extra, "by": d.by})
            self._drop(d.alert_id)
        else:
            if d.action == "dispatch":
                a["dispatch"] = d.at
            elif d.action == "rectify":
                a["rectify"] = d.at
                a["rect_due"] = None
            elif d.action == "verify":
                a["verify"] = d.at
            self._emit(a, "updated", d.at, {"disposition": extra, **extra})
        self.dirty = True
        self._risk(d.at)
        self._refresh_due()
        return None

    def _check(self, a: dict[str, Any], action: str) -> str | None:
        """The state machine (docs/ALERTS.md); ``None`` when the action is legal."""
        if action == "acknowledge":
            return ILLEGAL_TRANSITION if a["ack"] is not None else None
        if action == "comment":
            return None
        if action in ("dispatch", "rectify"):
            if a["ack"] is None or a["rectify"] is not None:
                return ILLEGAL_TRANSITION
            return None
        if action == "verify":
            return ILLEGAL_TRANSITION if a["rectify"] is None or a["verify"] is not None else None
        if action == "close":
            if a["resolved"] is None:
                return NOT_RESOLVED
            if a["hidden"] is not None and a["verify"] is None:
                return ILLEGAL_TRANSITION
            return None
        return UNKNOWN_ACTION

    # ------------------------------------------------------------ flood groups
    # Grouping is decided by event time, not by processing order: an alert joins the
    # earliest group leader that opened at this site within the window before it.
    # Streaming may notice a watermark-driven alert (stale, escalation) later than
    # the offline run does; looking leaders up by time keeps both runs' groups equal.
    MAX_LEADERS = 16

    def _leader_for(self, aid: str, ts: int, window_ms: int) -> list[Any] | None:
        best: list[Any] | None = None
        for leader in self.d.get("leaders") or []:
            lid, lts = leader[0], int(leader[1])
            # same instant: whoever was recorded first (one reading's findings come
            # in the same order in every run) leads
            if lid == aid or lts > ts or ts - lts > window_ms:
                continue
            if best is None or (lts, lid) < (int(best[1]), best[0]):
                best = leader
        return best

    def _add_leader(self, aid: str, ts: int, rank: int) -> None:
        leaders = list(self.d.get("leaders") or [])
        leaders.append([aid, ts, rank])
        leaders.sort(key=lambda x: (int(x[1]), x[0]))
        self.d["leaders"] = leaders[-self.MAX_LEADERS :]

    # --------------------------------------------------------------- emitting
    def _silence(self, a: dict[str, Any], ts: int) -> Silence | None:
        for s in self.ctx.silences:
            if s.matches(self.site_id, a["sensor"], a["kind"], ts):
                return s
        return None

    def _emit(
        self, a: dict[str, Any], event: str, ts: int, extra: dict[str, Any] | None = None
    ) -> None:
        extra = dict(extra or {})
        evidence: dict[str, Any] = dict(a["ev"])
        evidence["hidden_danger"] = a["hidden"] is not None
        if a["group"] is not None:
            evidence["group"] = a["group"]
        if a["chatter"]:
            evidence["chattering"] = True
        silence = self._silence(a, ts)
        if silence is not None:
            evidence["silenced_by"] = silence.to_dict()
        if "reason" in extra and "reason" in evidence:
            evidence["condition_reason"] = evidence.pop("reason")  # e.g. a fault's "range"
        for name in ("reason", "deadline_s", "previous_level", "disposition"):
            if name in extra:
                evidence[name] = extra[name]
        if event in ("acknowledged", "closed") or "disposition" in extra:
            notify = False  # the echo of an operator's own action
        elif silence is not None or a["chatter"]:
            notify = False
        elif a["group"] is not None:
            # grouped: silent unless more severe than anything the group has notified
            notify = level_rank(a["level"]) > a["glevel"]
            if notify:
                a["glevel"] = level_rank(a["level"])
        else:
            notify = True
        evidence["notify"] = notify
        a["seq"] += 1
        registry = self.ctx.registry
        site = registry.sites.get(self.site_id)
        sensor = registry.sensors.get(a["sensor"]) if a["sensor"] else None
        responsible = (
            registry.responsible(self.site_id)
            if site is not None
            else Responsible(enterprise="", regulator="", territory=())
        )
        self.events.append(
            AlertEvent(
                alert_id=a["id"],
                event=cast(EventType, event),
                kind=cast(Kind, a["kind"]),
                level=cast("Level | None", a["level"]),
                site_id=self.site_id,
                sensor_id=a["sensor"],
                metric=a["metric"],
                value=a["value"],
                threshold=a["threshold"],
                score=a["score"],
                started_at=int(a["started"]),
                ts=ts,
                message=message(event, a, site, sensor, self.site_id, extra),
                responsible=responsible,
                tier=int(a["tier"]),
                seq=int(a["seq"]),
                eta_s=a["eta_s"],
                evidence=evidence,
            )
        )

    def _risk(self, ts: int) -> None:
        site = self.ctx.registry.sites.get(self.site_id)
        grade, reasons, counts = site_grade(
            list(self.d["alerts"].values()), self.d["episodes"], site, ts, self.p
        )
        previous = self.d["risk"]
        if grade == previous:
            return
        self.d["risk"] = grade
        self.dirty = True
        region = list(site.region) if site is not None else []
        industry = site.industry if site is not None else None
        self.risks.append(
            risk_event("site", self.site_id, grade, previous, ts, reasons, counts, region, industry)
        )
