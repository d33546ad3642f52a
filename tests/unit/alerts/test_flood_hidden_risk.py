"""Alarm-flood control, the hidden-danger list and site/region risk grades."""

from __future__ import annotations

from pipeline.alerts.book import SiteBook
from pipeline.alerts.hidden import HiddenDangerList
from pipeline.alerts.params import LifecycleParams, Silence
from pipeline.alerts.risk import RegionRollup
from pipeline.model import Action, Disposition
from tests.unit.alerts.helpers import CH4, CH4B, O2, REGISTRY, SITE, T0, S, book, off, on

# ------------------------------------------------------------------ grouping


def test_grouping_within_window_first_notifies_rest_silent() -> None:
    b = book()
    b.apply_finding(on(T0, "yellow", 0.8), "ch4")
    b.apply_finding(on(T0 + 30 * S, "yellow", 0.8, sensor=CH4B), "ch4")
    b.apply_finding(on(T0 + 60 * S, "yellow", 19.3, sensor=O2), "o2")
    b.apply_finding(on(T0 + 61 * S, "yellow", 2.0, kind="anomaly", score=0.97), "ch4")
    leader = b.events[0]
    assert leader.evidence["notify"] is True and "group" not in leader.evidence
    for e in b.events[1:3]:
        assert e.evidence["group"] == leader.alert_id and e.evidence["notify"] is False
    # 61 s after the leader: a new group, led by the new alert
    assert b.events[3].evidence["notify"] is True and "group" not in b.events[3].evidence
    # every alert is still recorded with full evidence
    assert len(b.d["alerts"]) == 4


def test_grouped_member_notifies_when_more_severe_than_the_group() -> None:
    b = book()
    b.apply_finding(on(T0, "yellow", 0.8), "ch4")
    b.apply_finding(on(T0 + 10 * S, "red", 1.6, sensor=CH4B), "ch4")
    assert b.events[1].evidence["group"] == b.events[0].alert_id
    assert b.events[1].evidence["notify"] is True  # a red is never hidden behind a yellow
    b.apply_finding(on(T0 + 20 * S, "yellow", 19.3, sensor=O2), "o2")
    b.apply_finding(on(T0 + 30 * S, "red", 17.0, sensor=O2), "o2")
    assert b.events[2].evidence["notify"] is False
    assert b.events[3].evidence["notify"] is True


def test_chattering_alert_is_recorded_but_not_notified() -> None:
    b = book()
    notify: list[bool] = []
    for k in range(5):
        t = T0 + k * 600 * S  # apart enough not to be grouped
        b.apply_finding(on(t, "yellow", 0.8), "ch4")
        notify.append(b.events[-1].evidence["notify"])
        b.apply_finding(off(t + 60 * S, 0.3), "ch4")
    assert notify == [True, True, True, False, False]  # > 3 openings within one hour
    assert b.events[-2].evidence["chattering"] is True
    assert len({e.alert_id for e in b.events}) == 5


def test_silence_suppresses_notification_and_never_leads_a_group() -> None:
    s = Silence(SITE, T0 - 1, T0 + 3600 * S, "calibration", "maint1", sensor_id=CH4)
    b = book(silences=(s,))
    b.apply_finding(on(T0, "orange", 1.1), "ch4")
    e = b.events[0]
    assert e.evidence["notify"] is False
    assert e.evidence["silenced_by"]["reason"] == "calibration"
    assert e.evidence["silenced_by"]["by"] == "maint1"
    assert e.evidence["hidden_danger"] is True  # still recorded as a hidden danger
    b.apply_finding(on(T0 + 5 * S, "yellow", 0.8, sensor=CH4B), "ch4")  # not silenced
    assert b.events[-1].evidence["notify"] is True and "group" not in b.events[-1].evidence
    # after the window the same alert's events notify again
    b.fire_due(T0 + 24 * 3600 * S + 1)  # rectification overdue, outside the silence
    late = [x for x in b.events if x.alert_id == e.alert_id and x.ts >= T0 + 3600 * S]
    assert late and all(x.evidence["notify"] for x in late)


def test_silence_matching_rules() -> None:
    s = Silence(SITE, 100, 200, "r", "b", kind="stale")
    assert s.matches(SITE, CH4, "stale", 100) and s.matches(SITE, O2, "stale", 199)
    assert not s.matches(SITE, CH4, "stale", 200)
    assert not s.matches(SITE, CH4, "threshold", 150)
    assert not s.matches("HB-WH-0002", CH4, "stale", 150)
    assert Silence.from_dict(s.to_dict() | {"start": 100, "end": 200}) == s


# ------------------------------------------------------------- hidden list


def test_hidden_danger_entry_on_open_or_rise_and_exit_only_on_close() -> None:
    b = book()
    b.apply_finding(on(T0, "yellow", 0.8), "ch4")
    b.apply_finding(on(T0, "orange", 19.0, sensor=O2), "o2")  # enters at opening
    store = {SITE: b.d}
    hd = HiddenDangerList(store, REGISTRY)
    assert [e["sensor_id"] for e in hd.query(T0)] == [O2]
    b.apply_finding(on(T0 + 100 * S, "orange", 1.1), "ch4")  # enters when it rises
    b.apply_finding(on(T0 + 200 * S, "yellow", 0.8), "ch4")  # falls back: stays
    b.apply_finding(off(T0 + 300 * S, 0.3), "ch4")  # resolved: stays
    entries = hd.query(T0 + 400 * S)
    assert [e["sensor_id"] for e in entries] == [O2, CH4]
    ch4 = entries[1]
    assert ch4["level"] == "orange" and ch4["condition"] == "resolved"
    assert ch4["entered_at_ms"] == T0 + 100 * S and ch4["age_s"] == 300.0
    aid = ch4["alert_id"]
    actions: list[Action] = ["acknowledge", "rectify", "verify"]
    for i, action in enumerate(actions):
        b.apply_disposition(Disposition(aid, action, "op", T0 + (500 + i) * S))
        assert [e["alert_id"] for e in hd.query(T0 + 600 * S)][-1] == aid
    assert hd.query(T0 + 600 * S)[-1]["status"] == "verified"
    b.apply_disposition(Disposition(aid, "close", "op", T0 + 510 * S))
    assert [e["sensor_id"] for e in hd.query(T0 + 600 * S)] == [O2]


def test_hidden_danger_query_filters() -> None:
    a, c = book(), book(site="HB-YC-0001")
    a.apply_finding(on(T0, "red", 1.6), "ch4")
    c.apply_finding(on(T0 + 3600 * S, "red", 90.0, sensor="HB-YC-0001/T-01"), "temp")
    hd = HiddenDangerList({SITE: a.d, "HB-YC-0001": c.d}, REGISTRY)
    now = T0 + 7200 * S
    assert len(hd.query(now)) == 2
    assert [e["site_id"] for e in hd.query(now, region=["Hubei", "Wuhan"])] == [SITE]
    assert [e["site_id"] for e in hd.query(now, region=["Hubei", "Yichang", "Xiling"])] == [
        "HB-YC-0001"
    ]
    assert hd.query(now, region=["Henan"]) == []
    assert [e["site_id"] for e in hd.query(now, industry="warehousing")] == ["HB-YC-0001"]
    assert [e["site_id"] for e in hd.query(now, min_age_s=5000)] == [SITE]
    assert [e["site_id"] for e in hd.query(now, site_id="HB-YC-0001")] == ["HB-YC-0001"]


# -------------------------------------------------------------------- risk


def grades(b: SiteBook) -> list[tuple[str | None, str | None]]:
    return [(r["grade"], r["previous"]) for r in b.risks]


def test_site_grade_follows_open_alerts_with_major_hazard_step() -> None:
    b = book()  # HB-WH-0001 has hazard_grade 2
    b.apply_finding(on(T0, "yellow", 0.8), "ch4")
    b.apply_finding(on(T0 + 10 * S, "orange", 1.1), "ch4")  # orange + major hazard -> red
    assert grades(b) == [("yellow", None), ("red", "yellow")]
    assert "major_hazard_source_grade_2" in b.risks[-1]["reasons"]
    assert b.risks[-1]["open_alerts"] == {"orange": 1}
    assert b.risks[-1]["region"] == ["Hubei", "Wuhan", "Jiangxia"]
    assert b.risks[-1]["industry"] == "coal_mine" and b.risks[-1]["schema"] == "ew.risk/1"
    b.apply_finding(off(T0 + 20 * S, 0.3), "ch4")  # resolved, still a hidden danger
    assert grades(b)[-1] == ("yellow", "red")
    assert "unrectified_hidden_danger" in b.risks[-1]["reasons"]


def test_site_without_major_hazard_and_health_kinds_cap_at_blue() -> None:
    b = book(site="HB-WH-0002")
    b.apply_finding(on(T0, "orange", 90.0, sensor="HB-WH-0002/T-01"), "temp")
    assert grades(b) == [("orange", None)]
    c = book()
    c.apply_finding(on(T0, "yellow", None, kind="stale", sensor=O2), "o2")
    assert grades(c) == [("blue", None)]  # a blind sensor: less confidence, not a hazard
    # an orange fault is a hidden danger (a broken gas monitor must be repaired and
    # verified), which keeps the site yellow, not orange
    c.apply_finding(on(T0, "orange", 150.0, kind="fault"), "ch4")
    assert grades(c) == [("blue", None), ("yellow", "blue")]
    assert c.risks[-1]["reasons"] == ["open_blue", "unrectified_hidden_danger"]


def test_repeated_episodes_raise_one_step_and_age_out() -> None:
    b = book(site="HB-WH-0002")
    sid = "HB-WH-0002/T-01"
    for k in range(3):
        t = T0 + k * 3600 * S
        b.apply_finding(on(t, "blue", 70.0, sensor=sid), "temp")
        b.apply_finding(off(t + 60 * S, 60.0, sensor=sid), "temp")
    assert grades(b) == [
        ("blue", None),
        (None, "blue"),
        ("blue", None),
        (None, "blue"),
        ("yellow", None),
        (None, "yellow"),
    ]
    assert "repeated_episodes_3" in b.risks[-2]["reasons"]
    b.apply_finding(on(T0 + 23 * 3600 * S, "blue", 70.0, sensor=sid), "temp")
    assert grades(b)[-1] == ("yellow", None)  # 4 in 24 h
    # the earliest two leave the window: back to blue, stamped at the ageing instant
    b.fire_due(T0 + 26 * 3600 * S)
    assert grades(b)[-1] == ("blue", "yellow")
    assert b.risks[-1]["ts_ms"] == T0 + 3600 * S + 24 * 3600 * S


def test_region_rollup_is_max_of_children_and_emits_on_change() -> None:
    roll = RegionRollup()
    a, c = book(), book(site="HB-WH-0002")
    a.apply_finding(on(T0, "yellow", 0.8), "ch4")
    out = roll.update(a.risks[-1])
    assert [(r["scope"], r["id"], r["grade"]) for r in out] == [
        ("county", "Hubei/Wuhan/Jiangxia", "yellow"),
        ("city", "Hubei/Wuhan", "yellow"),
        ("province", "Hubei", "yellow"),
    ]
    c.apply_finding(on(T0 + S, "orange", 90.0, sensor="HB-WH-0002/T-01"), "temp")
    out = roll.update(c.risks[-1])
    assert [(r["scope"], r["grade"], r["previous"]) for r in out] == [
        ("county", "orange", "yellow"),
        ("city", "orange", "yellow"),
        ("province", "orange", "yellow"),
    ]
    assert out[0]["open_alerts"] == {"yellow": 1, "orange": 1}
    a.apply_finding(off(T0 + 2 * S, 0.3), "ch4")
    assert roll.update(a.risks[-1]) == []  # county still orange from the other site
    y = book(site="HB-YC-0001")
    y.apply_finding(on(T0 + 3 * S, "red", 90.0, sensor="HB-YC-0001/T-01"), "temp")
    out = roll.update(y.risks[-1])
    assert [(r["scope"], r["id"], r["grade"]) for r in out] == [
        ("county", "Hubei/Yichang/Xiling", "red"),
        ("city", "Hubei/Yichang", "red"),
        ("province", "Hubei", "red"),
    ]


def test_params_deadline_lookup() -> None:
    p = LifecycleParams()
    assert p.ack_deadline_ms("red") == 300_000 and p.ack_deadline_ms("blue") is None
    assert p.ack_deadline_ms(None) is None
