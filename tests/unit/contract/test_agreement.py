"""The Python side and the JSON Schemas say the same thing.

Telemetry: hypothesis builds dicts from the fixture registry, valid and mutated;
the validator accepts iff the schema accepts, modulo what a schema cannot see
(the registry, the clock). Produced messages (alerts, dead letters,
dispositions, registry records) validate against their schemas.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.model import (
    ACTIONS,
    EVENT_TYPES,
    KINDS,
    LEVELS,
    AlertEvent,
    DeadLetter,
    Disposition,
    Reading,
    Registry,
    Responsible,
)
from pipeline.registry import load_registry, registry_record_to_dict, registry_to_records
from pipeline.validation import Validator, disposition_to_dict, parse_disposition
from schemas import validator_for
from tests.unit.contract.conftest import FIXTURE_REGISTRY, NOW_MS, SRC

TELEMETRY = validator_for("telemetry")
REGISTRY_ONLY = {"unknown_sensor", "unit_mismatch"}


@functools.cache
def fixture_registry() -> Registry:
    return load_registry(FIXTURE_REGISTRY)


JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
JSON_VALUE = st.recursive(
    JSON_SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
TIMESTAMP_TEXT = st.one_of(
    st.datetimes(max_value=__import__("datetime").datetime(2026, 11, 28)).map(
        lambda d: d.isoformat() + "Z"
    ),
    st.sampled_from(
        [
            "2026-11-28T08:00:00Z",
            "2026-11-28t08:00:00z",
            "2026-11-28T08:00:00",
            "2026-11-28 08:00:00Z",
            "2026-11-28T08:00:00+0800",
            "2026-11-28T08:00:00.123456789123+08:00",
            "2016-12-31T23:59:60Z",
            "2026-02-29T00:00:00Z",
            "2024-02-29T00:00:00Z",
            "2026-11-28T24:00:00Z",
            "2026-11-28T08:00:00+24:00",
            "0000-01-01T00:00:00Z",
            "20261128T080000Z",
            "1795852800000",
            "",
        ]
    ),
    st.text(max_size=30),
)
TS = st.one_of(
    TIMESTAMP_TEXT,
    st.integers(-(10**3), NOW_MS),
    st.integers(0, NOW_MS).map(float),
    st.floats(allow_nan=False, allow_infinity=False),
)


@st.composite
def telemetry(draw: st.DrawFn) -> dict[str, Any]:
    sensor = draw(st.sampled_from(sorted(fixture_registry().sensors.values(), key=str)))
    doc: dict[str, Any] = {
        "site_id": sensor.site_id,
        "sensor_id": sensor.sensor_id,
        "metric": sensor.metric,
        "value": draw(st.one_of(st.floats(-1e9, 1e9), st.integers(-(10**9), 10**9))),
        "ts": draw(st.integers(0, NOW_MS)),
    }
    if draw(st.booleans()):
        doc["unit"] = sensor.unit
    if draw(st.booleans()):
        doc["quality"] = draw(st.sampled_from(["good", "uncertain", "bad"]))
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["drop", "set", "set_ts", "extra", "schema"]))
        field = draw(st.sampled_from([*doc, "unit", "quality"]))
        if op == "drop":
            doc.pop(field, None)
        elif op == "set":
            doc[field] = draw(JSON_VALUE)
        elif op == "set_ts":
            doc["ts"] = draw(TS)
        elif op == "extra":
            doc[draw(st.text(min_size=1, max_size=6))] = draw(JSON_VALUE)
        else:
            doc["schema"] = draw(st.sampled_from(["ew.telemetry/1", "ew.telemetry/2", 1, None]))
    return doc


def registry_disagrees(doc: dict[str, Any]) -> bool:
    sensor = fixture_registry().sensors.get(doc.get("sensor_id"))  # type: ignore[arg-type]
    return sensor is not None and (
        doc.get("site_id") != sensor.site_id or doc.get("metric") != sensor.metric
    )


@given(telemetry())
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_validator_accepts_iff_schema_accepts(doc: dict[str, Any]) -> None:
    raw = json.dumps(doc).encode()
    schema_ok = TELEMETRY.is_valid(doc)
    result = Validator(fixture_registry()).validate(raw, None, SRC, NOW_MS)
    if isinstance(result, Reading):
        assert schema_ok, f"validator accepted what the schema rejects: {doc}"
        return
    assert isinstance(result, DeadLetter)
    if schema_ok:
        # only what the schema cannot see may reject a schema-valid record
        clock_check = result.reason == "bad_timestamp" and (
            "outside 1970" in result.detail or "ahead of" in result.detail
        )
        assert (
            result.reason in REGISTRY_ONLY
            or clock_check
            or (result.reason == "schema_violation" and registry_disagrees(doc))
        ), (doc, result.reason, result.detail)
    else:
        assert result.reason in {"schema_violation", "bad_timestamp"}, (doc, result.detail)
        if result.reason == "bad_timestamp":
            ts_only = {**doc, "ts": 0}
            assert TELEMETRY.is_valid(ts_only), "bad_timestamp only when ts alone is wrong"


def test_rfc3339_checker_leniency_on_trailing_newline_is_ours_to_close() -> None:
    """rfc3339-validator matches with ``$`` and so accepts a trailing newline; we do not."""
    doc = {
        "site_id": "S",
        "sensor_id": "X",
        "metric": "m",
        "value": 1,
        "ts": "2026-11-28T08:00:00Z\n",
    }
    result = Validator(fixture_registry()).validate(json.dumps(doc).encode(), None, SRC, NOW_MS)
    assert isinstance(result, DeadLetter) and result.reason == "bad_timestamp"


RESPONSIBLE = Responsible("Example Mining Co.", "Wuhan EMB", ("Hubei", "Wuhan", "Jiangxia"))


@given(
    event=st.sampled_from(EVENT_TYPES),
    kind=st.sampled_from(KINDS),
    level=st.sampled_from([*LEVELS, None]),
    sensor=st.sampled_from([None, "HB-WH-0001/CH4-03"]),
    value=st.none() | st.floats(-1e6, 1e6),
    score=st.none() | st.floats(0, 1),
    eta=st.none() | st.floats(0, 86400),
    ts=st.integers(0, 4_102_444_800_000),
    emitted=st.none() | st.integers(0, 4_102_444_800_000),
    tier=st.integers(0, 3),
    seq=st.integers(1, 1000),
)
@settings(max_examples=100, deadline=None)
def test_alert_event_to_dict_matches_schema(
    event: Any,
    kind: Any,
    level: Any,
    sensor: str | None,
    value: float | None,
    score: float | None,
    eta: float | None,
    ts: int,
    emitted: int | None,
    tier: int,
    seq: int,
) -> None:
    alert = AlertEvent(
        alert_id=f"{sensor or 'HB-WH-0001'}:{kind}:{ts}",
        event=event,
        kind=kind,
        level=level,
        site_id="HB-WH-0001",
        sensor_id=sensor,
        metric=None if sensor is None else "ch4",
        value=value,
        threshold=value,
        score=score,
        started_at=ts,
        ts=ts,
        message="m",
        responsible=RESPONSIBLE,
        tier=tier,
        seq=seq,
        eta_s=eta,
        evidence={"window": [1, 2]},
        emitted_at=emitted,
    )
    errors = [e.message for e in validator_for("alert").iter_errors(alert.to_dict())]
    assert errors == []


def test_dispositions_round_trip_and_match_schema() -> None:
    schema = validator_for("disposition")
    for i, action in enumerate(ACTIONS):
        d = Disposition(f"A:{i}", action, "op-1", NOW_MS + i, None if i % 2 else "note")
        as_dict = disposition_to_dict(d)
        assert [e.message for e in schema.iter_errors(as_dict)] == []
        assert parse_disposition(json.dumps(as_dict).encode(), 0) == d


def test_parse_disposition_rejections_match_schema() -> None:
    schema = validator_for("disposition")
    good = {"alert_id": "A", "action": "verify", "by": "op", "at": "2026-11-28T08:00:00Z"}
    cases = [
        ({**good, "action": "ignore"}, "schema_violation"),
        ({**good, "by": ""}, "schema_violation"),
        ({k: v for k, v in good.items() if k != "alert_id"}, "schema_violation"),
        ({**good, "at": "yesterday"}, "bad_timestamp"),
        ({**good, "note": 5}, "schema_violation"),
        ([good], "schema_violation"),
    ]
    for doc, reason in cases:
        assert not schema.is_valid(doc)
        assert parse_disposition(json.dumps(doc).encode(), NOW_MS) == reason
    assert parse_disposition(b"{", NOW_MS) == "malformed_json"
    assert (
        parse_disposition(b'{"alert_id":"A","alert_id":"B","action":"verify","by":"o"}', 0)
        == "schema_violation"
    )
    rejected = parse_disposition(json.dumps({**good, "action": "ignore"}).encode(), NOW_MS)
    assert isinstance(rejected, str) and "ignore" in getattr(rejected, "detail", "")
    defaulted = parse_disposition(b'{"alert_id":"A","action":"comment","by":"o"}', NOW_MS)
    assert isinstance(defaulted, Disposition) and defaulted.at == NOW_MS


def test_registry_records_match_site_and_sensor_schemas() -> None:
    records = registry_to_records(fixture_registry())
    assert records, "fixture is not empty"
    for key, record in records:
        schema = validator_for(record["type"])
        assert [e.message for e in schema.iter_errors(record)] == [], key
        assert record[f"{record['type']}_id"] == key
    site = registry_record_to_dict(fixture_registry().sites["HB-WH-0001"])
    assert site["type"] == "site" and site["region"] == ["Hubei", "Wuhan", "Jiangxia"]
