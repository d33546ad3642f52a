"""Episodes, seqs, messages, escalation timing and the disposition state machine."""

from __future__ import annotations

import pytest

from pipeline.alerts.book import SiteBook
from pipeline.alerts.params import LifecycleParams
from pipeline.model import Action, Disposition, EventType, Level
from tests.unit.alerts.helpers import CH4, CH4B, O2, SITE, T0, S, book, off, on


def events(b: SiteBook) -> list[tuple[EventType, Level | None, int, int]]:
    """(event, level, tier, ts) of everything emitted so far."""
    return [(e.event, e.level, e.tier, e.ts) for e in b.events]


def test_one_episode_one_id_with_seqs() -> None:
    b = book()
    b.apply_finding(on(T0, "yellow", 0.8, threshold=0.75), "ch4")
    b.apply_finding(on(T0 + 60 * S, "orange", 1.02, threshold=1.0), "ch4")
    b.apply_finding(on(T0 + 90 * S, "red", 1.6, threshold=1.5), "ch4")
    b.apply_finding(off(T0 + 200 * S, 0.4, level="red"), "ch4")
    ids = {e.alert_id for e in b.events}
    assert ids == {f"{CH4}:threshold:{T0}"}
    assert [e.event for e in b.events] == ["opened", "updated", "updated", "resolved"]
    assert [e.seq for e in b.events] == [1, 2, 3, 4]
    assert [e.level for e in b.events] == ["yellow", "orange", "red", "red"]
    assert b.events[1].evidence["previous_level"] == "yellow"
    assert all(e.started_at == T0 for e in b.events)
    # a new activation after the clear is a new episode with its own id
    b.apply_finding(on(T0 + 400 * S, "yellow", 0.8, threshold=0.75), "ch4")
    assert b.events[-1].alert_id == f"{CH4}:threshold:{T0 + 400 * S}"
    assert b.events[-1].seq == 1 and b.events[-1].event == "opened"


def test_message_and_responsible() -> None:
    b = book()
    b.apply_finding(on(T0, "orange", 1.02, threshold=1.0), "ch4")
    e = b.events[0]
    assert e.message.startswith("CH4 1.02 %vol >= orange limit 1.0 at Jiangxia No.2 coal mine (")
    assert "Hubei Province, Wuhan" in e.message and e.message.endswith(f"[{CH4}]")
    assert e.responsible.enterprise == "Example Mining Co."
    assert e.responsible.territory == ("Hubei", "Wuhan", "Jiangxia")
    b.apply_finding(on(T0, "yellow", 19.3, sensor=O2, threshold=19.5), "o2")
    assert b.events[-1].message.startswith("O2 19.3 %vol <= yellow limit 19.5 at ")
    fc = on(
        T0,
        "orange",
        0.8,
        kind="forecast",
        threshold=1.0,
        eta_s=360.0,
        evidence={"slope_per_min": 0.02},
    )
    b.apply_finding(fc, "ch4")
    assert b.events[-1].message.startswith(
        "CH4 rising 0.02 %vol/min, expected to reach orange 1.0 in 6 min at Jiangxia"
    )
    assert b.events[-1].eta_s == 360.0


def test_clear_without_episode_is_ignored() -> None:
    b = book()
    b.apply_finding(off(T0, 0.1), "ch4")
    assert b.events == [] and not b.dirty


@pytest.mark.parametrize(("level", "deadline_s"), [("red", 300), ("orange", 900), ("yellow", 3600)])
def test_escalation_along_the_chain_at_deadlines(level: Level, deadline_s: int) -> None:
    b = book()
    b.apply_finding(on(T0, level, 2.0), "ch4")
    b.fire_due(T0 + 10 * deadline_s * S)
    esc = [e for e in b.events if e.event == "escalated"]
    assert [(e.tier, e.ts) for e in esc] == [(k, T0 + k * deadline_s * S) for k in (1, 2, 3)]
    assert [e.seq for e in esc] == [2, 3, 4]
    assert esc[0].evidence["reason"] == "unacknowledged"
    assert "escalated to county (tier 1)" in esc[0].message
    assert "escalated to province (tier 3)" in esc[2].message


def test_blue_never_escalates_and_watermark_is_exclusive() -> None:
    b = book()
    b.apply_finding(on(T0, "blue", 0.55), "ch4")
    b.fire_due(T0 + 100 * 3600 * S)
    assert [e.event for e in b.events] == ["opened"]
    b2 = book()
    b2.apply_finding(on(T0, "red", 2.0), "ch4")
    b2.fire_due(T0 + 300 * S)  # due exactly at the watermark: not yet
    assert [e.event for e in b2.events] == ["opened"]
    b2.fire_due(T0 + 300 * S + 1)
    assert b2.events[-1].event == "escalated"
    b2.fire_due(T0 + 300 * S + 1)  # idempotent
    assert len(b2.events) == 2


def ack(
    at: int, aid: str = f"{CH4}:threshold:{T0}", by: str = "op1", action: Action = "acknowledge"
) -> Disposition:
    return Disposition(aid, action, by, at)


def test_acknowledge_stops_escalation_and_fires_due_first() -> None:
    b = book()
    b.apply_finding(on(T0, "red", 2.0), "ch4")
    assert b.apply_disposition(ack(T0 + 400 * S)) is None
    b.fire_due(T0 + 10_000 * S)
    assert [x[:3] for x in events(b)] == [
        ("opened", "red", 0),
        ("escalated", "red", 1),
        ("acknowledged", "red", 1),
    ]
    assert b.events[-1].evidence["notify"] is False
    # acknowledging exactly at the deadline wins over the escalation
    b2 = book()
    b2.apply_finding(on(T0, "red", 2.0), "ch4")
    b2.apply_disposition(ack(T0 + 300 * S))
    b2.fire_due(T0 + 10_000 * S)
    assert [e.event for e in b2.events] == ["opened", "acknowledged"]


def test_level_rise_never_postpones_escalation() -> None:
    b = book()
    b.apply_finding(on(T0, "yellow", 0.8), "ch4")
    b.apply_finding(on(T0 + 1000 * S, "red", 1.6), "ch4")  # red deadline long passed
    b.fire_due(T0 + 1000 * S + 1)
    assert events(b)[-1] == ("escalated", "red", 1, T0 + 1000 * S)
    b.fire_due(T0 + 1300 * S + 1)
    assert events(b)[-1] == ("escalated", "red", 2, T0 + 1300 * S)


def test_resolved_yellow_stops_escalating_but_hidden_danger_continues() -> None:
    b = book()
    b.apply_finding(on(T0, "yellow", 0.8), "ch4")
    b.apply_finding(off(T0 + 60 * S, 0.3), "ch4")
    b.fire_due(T0 + 100 * 3600 * S)
    assert [e.event for e in b.events] == ["opened", "resolved"]
    b2 = book()
    b2.apply_finding(on(T0, "red", 2.0), "ch4")
    b2.apply_finding(off(T0 + 60 * S, 0.3), "ch4")
    b2.fire_due(T0 + 1000 * S)
    assert [e.event for e in b2.events] == [
        "opened",
        "resolved",
        "escalated",
        "escalated",
        "escalated",
    ]
    b3 = book(params=LifecycleParams(escalate_resolved_hidden=False))
    b3.apply_finding(on(T0, "red", 2.0), "ch4")
    b3.apply_finding(off(T0 + 60 * S, 0.3), "ch4")
    b3.fire_due(T0 + 1000 * S)
    assert [e.event for e in b3.events] == ["opened", "resolved"]


def test_disposition_rejections_each_reason() -> None:
    b = book()
    aid = f"{CH4}:threshold:{T0}"
    b.apply_finding(on(T0, "orange", 1.1), "ch4")
    n = len(b.events)
    assert b.apply_disposition(ack(T0 + 1, aid="nope:threshold:1")) == "unknown_alert"
    assert b.apply_disposition(ack(T0 + 1, by="")) == "missing_by"
    assert b.apply_disposition(ack(T0 + 1, action="dispatch")) == "illegal_transition"
    assert b.apply_disposition(ack(T0 + 1, action="verify")) == "illegal_transition"
    assert b.apply_disposition(ack(T0 + 1, action="close")) == "not_resolved"
    assert len(b.events) == n  # nothing applied silently
    assert b.apply_disposition(ack(T0 + 2)) is None
    assert b.apply_disposition(ack(T0 + 3)) == "illegal_transition"  # second ack
    assert b.apply_disposition(ack(T0 + 4, action="comment")) is None
    b.apply_finding(off(T0 + 10 * S, 0.2), "ch4")
    # hidden danger: close needs rectify and verify first
    assert b.apply_disposition(ack(T0 + 20 * S, action="close")) == "illegal_transition"
    assert b.apply_disposition(ack(T0 + 21 * S, action="verify")) == "illegal_transition"
    assert b.d["alerts"][aid]["hidden"] is not None


def test_full_disposal_path_removes_hidden_danger() -> None:
    b = book()
    aid = f"{CH4}:threshold:{T0}"
    b.apply_finding(on(T0, "red", 1.6), "ch4")
    before: list[Action] = ["acknowledge", "dispatch"]
    for i, action in enumerate(before):
        assert b.apply_disposition(ack(T0 + (i + 1) * S, action=action)) is None
    b.apply_finding(off(T0 + 100 * S, 0.3), "ch4")
    after: list[Action] = ["rectify", "verify", "close"]
    for i, action in enumerate(after):
        assert b.apply_disposition(ack(T0 + (200 + i) * S, action=action)) is None
    kinds = [(e.event, e.evidence.get("disposition", {}).get("action")) for e in b.events]
    assert kinds == [
        ("opened", None),
        ("acknowledged", "acknowledge"),
        ("updated", "dispatch"),
        ("resolved", None),
        ("updated", "rectify"),
        ("updated", "verify"),
        ("closed", "close"),
    ]
    assert [e.seq for e in b.events] == list(range(1, 8))
    assert aid not in b.d["alerts"]
    assert b.apply_disposition(ack(T0 + 300 * S, action="comment")) == "unknown_alert"


def test_non_hidden_alert_closes_after_resolve_without_verify() -> None:
    b = book()
    b.apply_finding(on(T0, "yellow", 0.8), "ch4")
    b.apply_finding(off(T0 + 10 * S, 0.3), "ch4")
    assert b.apply_disposition(ack(T0 + 20 * S, action="close")) is None
    assert b.events[-1].event == "closed" and b.d["alerts"] == {}


def test_resolved_alert_is_forgotten_after_retention() -> None:
    b = book()
    b.apply_finding(on(T0, "blue", 0.6), "ch4")
    b.apply_finding(off(T0 + 10 * S, 0.3), "ch4")
    late = T0 + 10 * S + 24 * 3600 * S
    assert b.apply_disposition(ack(late, action="comment")) is None  # still kept at the limit
    late += 1
    assert b.apply_disposition(ack(late, action="close")) == "unknown_alert"


def test_rectification_overdue_escalates_until_rectified() -> None:
    b = book()
    aid = f"{CH4}:threshold:{T0}"
    b.apply_finding(on(T0, "orange", 1.1), "ch4")
    b.apply_disposition(ack(T0 + 10 * S))
    day = 24 * 3600 * S
    b.fire_due(T0 + day + 1)
    last = b.events[-1]
    assert (last.event, last.ts, last.tier) == ("escalated", T0 + day, 1)
    assert last.evidence["reason"] == "rectification_overdue"
    assert "rectification overdue" in last.message
    b.apply_disposition(ack(T0 + day + 5 * S, action="dispatch"))
    b.apply_disposition(ack(T0 + day + 6 * S, action="rectify"))
    n = len(b.events)
    b.fire_due(T0 + 10 * day)
    assert len(b.events) == n
    assert b.d["alerts"][aid]["rect_due"] is None


def test_other_sensor_same_kind_is_a_separate_alert() -> None:
    b = book()
    b.apply_finding(on(T0, "yellow", 0.8), "ch4")
    b.apply_finding(on(T0 + 5 * S, "yellow", 0.8, sensor=CH4B), "ch4")
    assert len({e.alert_id for e in b.events}) == 2
    assert b.events[1].evidence["group"] == b.events[0].alert_id
    assert b.events[1].site_id == SITE


def test_another_sensors_finding_fires_timers_only_up_to_the_horizon() -> None:
    """Streaming: a fast source's reading must not escalate an alert before its
    clearing reading (earlier) arrives from a slower source: the order must be offline's."""
    b = book()
    b.apply_finding(on(T0, "red", 2.0), "ch4")  # escalation due at T0 + 300 s
    b.apply_finding(on(T0 + 400 * S, "yellow", 19.3, sensor=O2), "o2", horizon=T0 + 200 * S)
    assert [e.event for e in b.events if e.sensor_id == CH4] == ["opened"]
    b.apply_finding(off(T0 + 250 * S, 0.3), "ch4", horizon=T0 + 250 * S)
    b.fire_due(T0 + 301 * S)
    # A red alert escalates until acknowledged even once resolved: after the clear.
    assert [(e.event, e.seq, e.ts) for e in b.events if e.sensor_id == CH4] == [
        ("opened", 1, T0), ("resolved", 2, T0 + 250 * S), ("escalated", 3, T0 + 300 * S)]
    # Offline (no horizon) the same finding proves the time for the whole site.
    b2 = book()
    b2.apply_finding(on(T0, "red", 2.0), "ch4")
    b2.apply_finding(on(T0 + 400 * S, "yellow", 19.3, sensor=O2), "o2")
    assert [e.event for e in b2.events if e.sensor_id == CH4] == ["opened", "escalated"]


def test_own_sensors_finding_fires_its_timers_past_the_horizon() -> None:
    b = book()
    b.apply_finding(on(T0, "red", 2.0), "ch4")
    b.apply_finding(on(T0, "red", 2.0, sensor=CH4B), "ch4")
    b.apply_finding(off(T0 + 400 * S, 0.3), "ch4", horizon=T0 + 100 * S)
    # The sensor's own reading at +400 s proves its alert was still open at +300 s.
    assert [(e.sensor_id, e.event, e.ts) for e in b.events[2:]] == [
        (CH4, "escalated", T0 + 300 * S), (CH4, "resolved", T0 + 400 * S)]
    b.fire_due(T0 + 301 * S)  # the other sensor's alert escalates with the watermark
    assert (b.events[-1].sensor_id, b.events[-1].event) == (CH4B, "escalated")


def test_a_disposition_fires_only_its_own_alerts_timers_past_the_horizon() -> None:
    b = book()
    b.apply_finding(on(T0, "red", 2.0), "ch4")
    b.apply_finding(on(T0, "red", 2.0, sensor=CH4B), "ch4")
    assert b.apply_disposition(ack(T0 + 400 * S), horizon=T0 + 100 * S) is None
    assert [(e.sensor_id, e.event) for e in b.events[2:]] == [
        (CH4, "escalated"), (CH4, "acknowledged")]
