"""The engine: real detectors + lifecycle over injected, JSON-safe stores."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import replace
from typing import Any

from pipeline.alerts.params import Silence
from pipeline.alerts.risk import RegionRollup
from pipeline.engine import Detector, Engine, EngineOutput, EngineParams
from pipeline.findings import Finding
from pipeline.model import Disposition, Reading, Sensor
from tests.unit.alerts.helpers import CH4, O2, REGISTRY, SITE, T0, S


def readings(seed: int = 1, silent_o2: tuple[int, int] = (600, 700)) -> list[Reading]:
    """CH4 ramps through all four levels and back; O2 falls silent for a while."""
    rng = random.Random(seed)
    out = []
    for i in range(800):
        t = T0 + i * 10 * S
        v = 0.3 + rng.gauss(0, 0.01)
        if 300 <= i < 500:
            v += (i - 300) * 0.008
        elif 500 <= i < 560:
            v += 1.6
        elif i >= 560:
            v += max(0.0, 1.6 - (i - 560) * 0.05)
        out.append(Reading(SITE, CH4, "ch4", v, t, "%vol"))
        if not silent_o2[0] <= i < silent_o2[1]:
            out.append(Reading(SITE, O2, "o2", 20.9 + rng.gauss(0, 0.05), t, "%vol"))
    return out


def run(engine: Engine, items: Sequence[Reading | Disposition], final: bool = True) -> EngineOutput:
    total = EngineOutput()
    for item in items:
        if isinstance(item, Reading):
            total.extend(engine.on_reading(item))
        else:
            total.extend(engine.on_disposition(item))
    if final and engine.watermark_ms is not None:
        total.extend(engine.on_watermark(engine.watermark_ms))
    return total


def dicts(out: EngineOutput) -> list[dict[str, Any]]:
    return [e.to_dict() for e in out.alerts]


def key(d: dict[str, Any]) -> tuple[str, int]:
    return (d["alert_id"], d["seq"])


def test_ramp_gives_one_threshold_alert_through_all_levels() -> None:
    out = run(Engine(REGISTRY), list(readings()))
    th = [e for e in out.alerts if e.kind == "threshold" and e.sensor_id == CH4]
    assert len({e.alert_id for e in th}) == 1
    aid = th[0].alert_id
    assert aid == f"{CH4}:threshold:{th[0].started_at}"
    levels = [e.level for e in th if e.event in ("opened", "updated")]
    assert levels.index("yellow") < levels.index("orange") < levels.index("red")
    assert th[-1].event == "resolved" or any(e.event == "resolved" for e in th)
    fc_orange = [
        e
        for e in out.alerts
        if e.kind == "forecast" and e.level == "orange" and e.event == "opened"
    ]
    first_orange = min(e.ts for e in th if e.level == "orange")
    assert fc_orange and fc_orange[0].ts < first_orange
    seqs: dict[str, list[int]] = {}
    for e in out.alerts:
        seqs.setdefault(e.alert_id, []).append(e.seq)
    assert all(s == list(range(1, len(s) + 1)) for s in seqs.values())


def test_silent_sensor_goes_stale_at_the_deadline_and_recovers() -> None:
    out = run(Engine(REGISTRY), list(readings()))
    stale = [e for e in out.alerts if e.kind == "stale"]
    assert [e.event for e in stale][:2] == ["opened", "resolved"]
    last_seen = T0 + 599 * 10 * S
    assert stale[0].ts == last_seen + 30 * S  # 3 missed 10 s intervals
    assert stale[1].ts == T0 + 700 * 10 * S


def test_deterministic_and_independent_of_check_interval() -> None:
    a = dicts(run(Engine(REGISTRY), list(readings())))
    b = dicts(run(Engine(REGISTRY), list(readings())))
    assert a == b
    c = dicts(run(Engine(REGISTRY, EngineParams(check_interval_ms=600_000)), list(readings())))
    assert sorted(a, key=key) == sorted(c, key=key)


class JsonStore(MutableMapping[str, dict[str, Any]]):
    """A store that keeps only JSON text, like a Faust table's changelog; counts writes."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.writes = 0

    def __getitem__(self, k: str) -> dict[str, Any]:
        d: dict[str, Any] = json.loads(self.data[k])
        return d

    def __setitem__(self, k: str, v: dict[str, Any]) -> None:
        self.writes += 1
        self.data[k] = json.dumps(v)

    def __delitem__(self, k: str) -> None:
        del self.data[k]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def with_dispositions(out: EngineOutput) -> list[Reading | Disposition]:
    """Readings with an acknowledge and a full disposal merged in by time."""
    th = next(e for e in out.alerts if e.kind == "threshold" and e.event == "opened")
    aid = th.alert_id
    end = T0 + 7990 * S
    disp = [
        Disposition(aid, "acknowledge", "op1", th.started_at + 600 * S),
        Disposition(aid, "dispatch", "op1", th.started_at + 700 * S),
        Disposition(aid, "rectify", "op2", end - 300 * S),
        Disposition(aid, "verify", "op3", end - 200 * S),
        Disposition(aid, "close", "op3", end - 100 * S),
        Disposition("HB-WH-0001/CH4-03:threshold:1", "acknowledge", "op1", end - 50 * S),
    ]
    items: list[Reading | Disposition] = []
    pending = list(disp)
    for r in readings():
        while pending and pending[0].at <= r.ts:
            items.append(pending.pop(0))
        items.append(r)
    return items


def test_stores_round_tripped_through_json_give_identical_output() -> None:
    items = with_dispositions(run(Engine(REGISTRY), list(readings())))
    plain = run(Engine(REGISTRY, region_rollup=RegionRollup()), items)
    sensors, sites = JsonStore(), JsonStore()
    js = run(
        Engine(
            REGISTRY,
            sensor_store=sensors,
            site_store=sites,
            region_rollup=RegionRollup(JsonStore()),
        ),
        items,
    )
    assert dicts(plain) == dicts(js)
    assert plain.risks == js.risks and plain.rejected == js.rejected
    assert [r for _, r in plain.rejected] == ["unknown_alert"]
    assert any(e.event == "closed" for e in plain.alerts)
    # region roll-up ran in-process
    assert {r["scope"] for r in plain.risks} == {"site", "county", "city", "province"}


def test_site_store_written_only_when_something_changed() -> None:
    sites = JsonStore()
    engine = Engine(REGISTRY, site_store=sites)
    quiet = [r for r in readings() if r.ts < T0 + 2000 * S]  # before the ramp
    run(engine, quiet)
    assert sites.writes == 0
    run(engine, [r for r in readings() if r.ts >= T0 + 2000 * S])
    assert 0 < sites.writes < 200


def test_acknowledge_applied_through_engine_stops_escalation() -> None:
    base = run(Engine(REGISTRY), list(readings()))
    items = with_dispositions(base)
    out = run(Engine(REGISTRY), items)
    aid = next(e.alert_id for e in out.alerts if e.kind == "threshold")
    esc = [e for e in out.alerts if e.alert_id == aid and e.event == "escalated"]
    ack_at = next(e.ts for e in out.alerts if e.alert_id == aid and e.event == "acknowledged")
    assert all(e.ts < ack_at for e in esc)
    assert len([e for e in base.alerts if e.alert_id == aid and e.event == "escalated"]) > len(esc)
    hd = Engine(REGISTRY)
    run(hd, items)
    assert aid not in {x["alert_id"] for x in hd.hidden_dangers.query(T0 + 8000 * S)}


def test_site_of_alert_routes_by_sensor_prefix() -> None:
    e = Engine(REGISTRY)
    assert e.site_of_alert(f"{CH4}:threshold:{T0}") == SITE
    assert e.site_of_alert("nope:threshold:1") is None
    assert e.site_of_alert("garbage") is None


def test_injected_detector_and_registry_swap() -> None:
    calls: list[str] = []

    def step(state: Any, r: Reading, s: Sensor, p: Any) -> tuple[Any, list[Finding]]:
        calls.append(r.sensor_id)
        hot = r.value > 1.0
        was = state.get("hot", False)
        state = _D({"hot": hot})
        if hot != was:
            return state, [Finding(r.sensor_id, "threshold", hot, r.ts, "red", r.value, 1.0)]
        return state, []

    fake = Detector(
        new_state=lambda s, p: _D({}),
        step=step,
        check_stale=lambda st, s, w, p: (st, []),
        from_dict=lambda d: _D(d),
        stale_due=lambda st, s, p: None,
    )
    new_sensor = "HB-WH-0001/CH4-09"
    reg = REGISTRY
    engine = Engine(reg, detector=fake)
    r = Reading(SITE, new_sensor, "ch4", 2.0, T0, "%vol")
    assert engine.on_reading(r).alerts == []  # not (yet) in the registry
    sensors = dict(reg.sensors)
    sensors[new_sensor] = replace(reg.sensors[CH4], sensor_id=new_sensor)
    engine.registry = replace(reg, sensors=sensors)
    out = engine.on_reading(r)
    assert [(e.event, e.alert_id) for e in out.alerts] == [
        ("opened", f"{new_sensor}:threshold:{T0}")
    ]
    assert calls == [new_sensor]


class _D(dict[str, Any]):
    def to_dict(self) -> dict[str, Any]:
        return dict(self)


def test_silence_through_engine_and_watermark_idempotent() -> None:
    engine = Engine(REGISTRY)
    engine.add_silence(Silence(SITE, T0, T0 + 10 * 3600 * S, "maintenance", "m1"))
    out = run(engine, list(readings()))
    assert out.alerts and all(e.evidence["notify"] is False for e in out.alerts)
    assert engine.on_watermark(engine.watermark_ms or 0).alerts == []
    assert O2 in engine.sensor_store


def test_new_engine_on_recovered_stores_continues_identically() -> None:
    """A rebalance: another worker picks the tables up half-way (no in-memory state)."""
    items = list(readings())
    cut = len(items) // 2 + 123  # mid-silence of O2 would be 1200..1400; cut elsewhere
    single = run(Engine(REGISTRY), items)
    first = Engine(REGISTRY)
    out = run(first, items[:cut], final=False)
    sensors = json.loads(json.dumps(first.sensor_store))
    sites = json.loads(json.dumps(first.site_store))
    second = Engine(REGISTRY, sensor_store=sensors, site_store=sites)
    assert first.watermark_ms is not None  # narrows for the int-only setter
    second.watermark_ms = first.watermark_ms
    out.extend(run(second, items[cut:]))
    assert sorted(dicts(out), key=key) == sorted(dicts(single), key=key)


def test_use_stores_swaps_state() -> None:
    e = Engine(REGISTRY)
    a_sensors: dict[str, dict[str, Any]] = {}
    a_sites: dict[str, dict[str, Any]] = {}
    e.use_stores(a_sensors, a_sites)
    run(e, list(readings())[:50], final=False)
    assert CH4 in a_sensors and e.sensor_store is a_sensors


def test_streaming_shape_returns_site_risk_only() -> None:
    out = run(Engine(REGISTRY), list(readings()))
    assert out.risks and {r["scope"] for r in out.risks} == {"site"}
    # grades only reported on change: consecutive events of the site never repeat a grade
    grades = [r["grade"] for r in out.risks]
    assert all(a != b for a, b in itertools.pairwise(grades))
    assert all(r["previous"] == p for r, p in zip(out.risks[1:], grades, strict=False))


def test_reset_event_time_restarts_the_clock_from_the_callers_watermark() -> None:
    """After a rebalance the partition's restored source progress rules, not an old clock."""
    items = [r for r in readings() if isinstance(r, Reading)]
    e = Engine(REGISTRY)
    run(e, items[:600], final=False)
    ahead = e.watermark_ms
    assert ahead is not None and ahead > items[100].ts
    e.reset_event_time()
    assert e.watermark_ms is None
    e.on_reading(items[100], watermark_ms=items[100].ts)
    assert e.watermark_ms == items[100].ts  # not max(old clock, new watermark)


def test_sources_at_different_paces_give_the_offline_events() -> None:
    """Streaming merges sources that run apart; with the slowest one's progress as the
    watermark every alert's events are the offline ones, in the same order (seq)."""
    rng = random.Random(7)
    items = []
    for i in range(200):  # CH4 red for 250 s then clear; O2 low from 400 s on
        t = T0 + i * 10 * S
        items.append(Reading(SITE, CH4, "ch4", (2.0 if 50 <= i < 75 else 0.3)
                             + rng.gauss(0, 0.01), t, "%vol"))
        items.append(Reading(SITE, O2, "o2", (19.3 if i >= 90 else 20.9)
                             + rng.gauss(0, 0.01), t, "%vol"))
    expected = {key(d): d for d in dicts(run(Engine(REGISTRY), items))}
    # O2's source runs 200 s of event time ahead of CH4's.
    arrival = sorted(((r.ts - (200 * S if r.sensor_id == O2 else 0), r.sensor_id == O2, r)
                      for r in items), key=lambda x: (x[0], x[1]))
    engine, out = Engine(REGISTRY), EngineOutput()
    latest: dict[str, int] = {}
    for _, _, r in arrival:
        latest[r.sensor_id] = r.ts
        watermark = min(latest.values()) if len(latest) == 2 else 0
        out.extend(engine.on_reading(r, watermark))
    out.extend(engine.on_watermark(max(latest.values())))

    def ungrouped(d: dict[str, Any]) -> dict[str, Any]:
        return {**d, "evidence": {k: v for k, v in d["evidence"].items()
                                  if k not in ("group", "notify")}}

    got = {key(d): d for d in dicts(out)}
    ch4 = sorted((k[1], d["event"]) for k, d in expected.items()
                 if d["sensor_id"] == CH4 and d["kind"] == "threshold")
    assert [e for _, e in ch4][:3] == ["opened", "resolved", "escalated"]
    assert {k: ungrouped(v) for k, v in got.items()} == {
        k: ungrouped(v) for k, v in expected.items()}
