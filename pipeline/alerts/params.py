"""Lifecycle parameters and notification silences: plain frozen objects for the core."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.timeutil import parse_rfc3339, to_rfc3339


@dataclass(frozen=True, slots=True)
class LifecycleParams:
    """Deadlines and windows of the alert lifecycle (seconds, event time).

    Acknowledgement deadlines follow the four-colour grades: the more severe,
    the sooner an unacknowledged alert climbs the responsibility chain
    (enterprise 0 -> county 1 -> city 2 -> province 3). ``None`` never escalates.
    """

    ack_deadline_s: tuple[tuple[str, float | None], ...] = (
        ("blue", None),
        ("yellow", 3600.0),
        ("orange", 900.0),
        ("red", 300.0),
    )
    max_tier: int = 3
    # Resolved hidden dangers (orange/red reached) keep escalating until acknowledged:
    # a cleared gas peak is still a hazard somebody has to look at.
    escalate_resolved_hidden: bool = True
    rectify_deadline_s: float = 24 * 3600.0
    max_rectify_escalations: int = 3
    retain_resolved_s: float = 24 * 3600.0  # how long a closed-able resolved alert is kept
    group_window_s: float = 60.0
    chatter_window_s: float = 3600.0
    chatter_max_opens: int = 3  # more openings than this in the window = chattering
    risk_history_s: float = 24 * 3600.0
    risk_repeat_min: int = 3  # this many hazard episodes in the history window raise a step
    major_hazard_grades: tuple[int, ...] = (1, 2)

    def ack_deadline_ms(self, level: str | None) -> int | None:
        """Acknowledgement deadline of a level in ms, ``None`` if it never escalates."""
        for name, seconds in self.ack_deadline_s:
            if name == level:
                return None if seconds is None else int(seconds * 1000)
        return None


@dataclass(frozen=True, slots=True)
class Silence:
    """A maintenance window: matching alerts are recorded but not notified.

    ``sensor_id`` / ``kind`` of ``None`` match any sensor / kind of the site.
    The window is half-open, ``[start_ms, end_ms)``, in event time.
    """

    site_id: str
    start_ms: int
    end_ms: int
    reason: str
    by: str
    sensor_id: str | None = None
    kind: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def matches(self, site_id: str, sensor_id: str | None, kind: str, ts: int) -> bool:
        return (
            site_id == self.site_id
            and (self.sensor_id is None or self.sensor_id == sensor_id)
            and (self.kind is None or self.kind == kind)
            and self.start_ms <= ts < self.end_ms
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id,
            "sensor_id": self.sensor_id,
            "kind": self.kind,
            "start": to_rfc3339(self.start_ms),
            "end": to_rfc3339(self.end_ms),
            "reason": self.reason,
            "by": self.by,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Silence:
        """Build from JSON (``start``/``end`` as RFC 3339 or epoch ms); raises ``ValueError``."""
        try:
            site_id, reason, by = d["site_id"], d["reason"], d["by"]
            start, end = _time(d["start"]), _time(d["end"])
        except KeyError as exc:
            raise ValueError(f"silence is missing {exc.args[0]!r}") from None
        for name, value in (("site_id", site_id), ("reason", reason), ("by", by)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"silence {name} must be a non-empty string")
        if end <= start:
            raise ValueError("silence end must be after start")
        sensor_id, kind = d.get("sensor_id"), d.get("kind")
        if sensor_id is not None and not isinstance(sensor_id, str):
            raise ValueError("silence sensor_id must be a string")
        if kind is not None and not isinstance(kind, str):
            raise ValueError("silence kind must be a string")
        return cls(site_id, start, end, reason, by, sensor_id, kind)


def _time(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("time must be RFC 3339 or epoch ms")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return parse_rfc3339(value)
    raise ValueError("time must be RFC 3339 or epoch ms")
