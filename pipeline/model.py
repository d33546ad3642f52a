"""Typed messages shared by the offline and streaming paths.

Plain frozen, slotted dataclasses: cheap to build, hashable, and free of any
framework so that ``ewarn detect`` and the Faust agents use the very same types.
Every message has ``to_dict`` (the JSON form of the contract) and ``from_dict``.
Field names follow ``../shared/CONTRACT.md``; JSON Schemas live in ``schemas/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Level = Literal["blue", "yellow", "orange", "red"]
LEVELS: tuple[Level, ...] = ("blue", "yellow", "orange", "red")
LEVEL_RANK: dict[str, int] = {name: i for i, name in enumerate(LEVELS)}

Kind = Literal["threshold", "forecast", "rate", "anomaly", "stale", "flatline", "fault"]
KINDS: tuple[Kind, ...] = get_args(Kind)

Quality = Literal["good", "uncertain", "bad"]
QUALITIES: tuple[Quality, ...] = get_args(Quality)

Direction = Literal["high", "low"]

Industry = Literal[
    "coal_mine",
    "non_coal_mine",
    "hazardous_chemicals",
    "metallurgy",
    "construction",
    "fireworks",
    "warehousing",
    "other",
]
INDUSTRIES: tuple[Industry, ...] = get_args(Industry)

EventType = Literal["opened", "updated", "escalated", "acknowledged", "resolved", "closed"]
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)

Action = Literal["acknowledge", "dispatch", "rectify", "verify", "close", "comment"]
ACTIONS: tuple[Action, ...] = get_args(Action)

ALERT_SCHEMA = "ew.alert/1"


def level_rank(level: str | None) -> int:
    """Severity rank of a level (blue 0 .. red 3); ``None`` ranks -1."""
    return -1 if level is None else LEVEL_RANK[level]


@dataclass(frozen=True, slots=True)
class Reading:
    """An accepted telemetry reading, normalised: ``ts`` is event time in epoch ms."""

    site_id: str
    sensor_id: str
    metric: str
    value: float
    ts: int
    unit: str | None = None
    quality: Quality = "good"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "site_id": self.site_id,
            "sensor_id": self.sensor_id,
            "metric": self.metric,
            "value": self.value,
            "ts": self.ts,
            "quality": self.quality,
        }
        if self.unit is not None:
            out["unit"] = self.unit
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Reading:
        return cls(
            site_id=d["site_id"],
            sensor_id=d["sensor_id"],
            metric=d["metric"],
            value=float(d["value"]),
            ts=int(d["ts"]),
            unit=d.get("unit"),
            quality=d.get("quality", "good"),
        )


@dataclass(frozen=True, slots=True)
class SourcePosition:
    """Where a raw record came from: topic/partition/offset, or file/line offline."""

    topic: str
    partition: int
    offset: int

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SourcePosition:
        return cls(topic=d["topic"], partition=int(d["partition"]), offset=int(d["offset"]))


@dataclass(frozen=True, slots=True)
class Unit:
    """The enterprise responsible for a site (the contract's ``unit``)."""

    name: str
    credit_code: str | None = None


@dataclass(frozen=True, slots=True)
class Site:
    site_id: str
    name: str
    address: str
    unit: Unit
    industry: Industry
    region: tuple[str, str, str]  # province, city, county
    regulator: str
    hazard_grade: int | None = None


@dataclass(frozen=True, slots=True)
class Thresholds:
    direction: Direction
    levels: tuple[tuple[Level, float], ...]  # ascending severity, only configured levels
    hysteresis: float = 0.0
    delay_s: float = 0.0

    def limit(self, level: Level) -> float | None:
        for name, value in self.levels:
            if name == level:
                return value
        return None


@dataclass(frozen=True, slots=True)
class RateLimit:
    per_minute: float
    level: Level = "yellow"


@dataclass(frozen=True, slots=True)
class Sensor:
    sensor_id: str
    site_id: str
    metric: str
    unit: str
    interval_s: float
    range: tuple[float, float] | None = None
    thresholds: Thresholds | None = None
    rate_limit: RateLimit | None = None


@dataclass(frozen=True, slots=True)
class Responsible:
    """Who answers for an alert: the enterprise, its regulator, the territory chain."""

    enterprise: str
    regulator: str
    territory: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "enterprise": self.enterprise,
            "regulator": self.regulator,
            "territory": list(self.territory),
        }


@dataclass(frozen=True, slots=True)
class Registry:
    """Sites and sensors by id. Immutable: an update builds a new registry."""

    sites: dict[str, Site] = field(default_factory=dict)
    sensors: dict[str, Sensor] = field(default_factory=dict)

    def responsible(self, site_id: str) -> Responsible:
        site = self.sites[site_id]
        return Responsible(site.unit.name, site.regulator, tuple(site.region))


@dataclass(frozen=True, slots=True)
class Disposition:
    """An operator's answer to an alert (``ew.dispositions``)."""

    alert_id: str
    action: Action
    by: str
    at: int  # epoch ms
    note: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected raw record with one reason code; ``payload`` is the original bytes."""

    reason: str
    detail: str
    source: SourcePosition
    key: str | None
    payload: str  # original bytes as UTF-8 text, or base64 (see payload_encoding)
    at: str  # RFC 3339, when it was rejected
    payload_encoding: Literal["base64"] | None = None
    key_encoding: Literal["base64"] | None = None  # set when the key bytes were not UTF-8

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "reason": self.reason,
            "detail": self.detail,
            "source": self.source.to_dict(),
            "key": self.key,
            "payload": self.payload,
            "at": self.at,
        }
        if self.payload_encoding is not None:
            out["payload_encoding"] = self.payload_encoding
        if self.key_encoding is not None:
            out["key_encoding"] = self.key_encoding
        return out


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One event in the life of one alert (``ew.warnings``, schema ``ew.alert/1``).

    ``seq`` numbers the events of one ``alert_id`` from 1: with at-least-once
    delivery a consumer drops any (alert_id, seq) it has already seen.
    """

    alert_id: str
    event: EventType
    kind: Kind
    level: Level | None
    site_id: str
    sensor_id: str | None
    metric: str | None
    value: float | None
    threshold: float | None
    score: float | None
    started_at: int  # epoch ms, episode start (event time)
    ts: int  # epoch ms, event time of this event
    message: str
    responsible: Responsible
    tier: int = 0
    seq: int = 1
    eta_s: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    emitted_at: int | None = None  # processing time, epoch ms; set at publish

    def to_dict(self) -> dict[str, Any]:
        from pipeline.timeutil import to_rfc3339

        return {
            "schema": ALERT_SCHEMA,
            "alert_id": self.alert_id,
            "seq": self.seq,
            "event": self.event,
            "kind": self.kind,
            "level": self.level,
            "site_id": self.site_id,
            "sensor_id": self.sensor_id,
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
            "score": self.score,
            "eta_s": self.eta_s,
            "started_at": to_rfc3339(self.started_at),
            "ts": to_rfc3339(self.ts),
            "emitted_at": None if self.emitted_at is None else to_rfc3339(self.emitted_at),
            "message": self.message,
            "responsible": self.responsible.to_dict(),
            "tier": self.tier,
            "evidence": self.evidence,
        }
