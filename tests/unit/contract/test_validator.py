"""The ingest validator: reason codes, precedence, normalisation, robustness, conservation."""

from __future__ import annotations

import base64
import functools
import json
import random
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.model import DeadLetter, Reading, Registry, SourcePosition
from pipeline.registry import load_registry
from pipeline.validation import (
    REASON_CODES,
    ValidationParams,
    Validator,
    parse_timestamp,
    validate_stream,
)
from schemas import validator_for
from tests.unit.contract.conftest import FIXTURE_REGISTRY, NOW_MS, SRC, good_record

DEADLETTER_SCHEMA = validator_for("deadletter")


def raw_of(record: object) -> bytes:
    return json.dumps(record).encode()


def original_bytes(dl: DeadLetter) -> bytes:
    if dl.payload_encoding == "base64":
        return base64.b64decode(dl.payload, validate=True)
    return dl.payload.encode("utf-8")


def check_dead_letter(dl: DeadLetter, raw: bytes) -> None:
    """Every dead letter keeps the bytes exactly and conforms to its schema."""
    assert original_bytes(dl) == raw
    assert dl.reason in REASON_CODES
    assert dl.detail
    errors = [e.message for e in DEADLETTER_SCHEMA.iter_errors(dl.to_dict())]
    assert errors == []


def reject(validator: Validator, raw: bytes, now_ms: int = NOW_MS, **kw: object) -> DeadLetter:
    result = validator.validate(raw, b"k", SRC, now_ms, **kw)  # type: ignore[arg-type]
    assert isinstance(result, DeadLetter), f"accepted: {result}"
    check_dead_letter(result, raw)
    return result


# --- accepted readings -------------------------------------------------------------------


def test_accepts_the_contract_example_and_normalises(validator: Validator) -> None:
    result = validator.validate(raw_of(good_record()), b"HB-WH-0001/CH4-03", SRC, NOW_MS)
    assert result == Reading("HB-WH-0001", "HB-WH-0001/CH4-03", "ch4", 0.42, NOW_MS, "%vol")


def test_epoch_ms_and_defaults(validator: Validator) -> None:
    raw = raw_of(good_record(ts=NOW_MS - 5, value=3, unit=..., quality=...))
    result = validator.validate(raw, None, SRC, NOW_MS)
    assert isinstance(result, Reading)
    assert result.ts == NOW_MS - 5 and type(result.ts) is int
    assert result.value == 3.0 and type(result.value) is float
    assert result.quality == "good"
    assert result.unit == "%vol", "the registry's unit fills a missing one"


@pytest.mark.parametrize(
    ("text", "expected_ms"),
    [
        ("2026-11-28T08:00:00Z", NOW_MS),
        ("2026-11-28T16:00:00+08:00", NOW_MS),
        ("2026-11-28T03:30:00-04:30", NOW_MS),
        ("2026-11-28T08:00:00.1239Z", NOW_MS + 123),  # truncated, not rounded
        ("2026-11-28T08:00:00.5-00:00", NOW_MS + 500),
        ("1970-01-01T00:00:00Z", 0),
    ],
)
def test_rfc3339_offsets_and_fractions(validator: Validator, text: str, expected_ms: int) -> None:
    result = validator.validate(raw_of(good_record(ts=text)), None, SRC, NOW_MS)
    assert isinstance(result, Reading) and result.ts == expected_ms


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
    st.integers(-23 * 60 - 59, 23 * 60 + 59),
    st.integers(0, 999_999),
)
@settings(max_examples=200, deadline=None)
def test_parse_timestamp_matches_datetime(dt: datetime, offset_min: int, micro: int) -> None:
    dt = dt.replace(microsecond=micro)
    local = dt.astimezone(timezone(timedelta(minutes=offset_min)))
    text = local.isoformat(timespec="microseconds")
    expected = (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    assert parse_timestamp(text) == expected


def test_integral_float_ts_counts_as_integer(validator: Validator) -> None:
    result = validator.validate(
        b'{"site_id":"HB-WH-0001","sensor_id":"HB-WH-0001/CH4-03",'
        b'"metric":"ch4","value":1,"ts":1.7958528e12}',
        None,
        SRC,
        NOW_MS,
    )
    assert isinstance(result, Reading) and result.ts == NOW_MS


def test_old_data_is_accepted_for_replays(validator: Validator) -> None:
    result = validator.validate(raw_of(good_record(ts="2001-01-01T00:00:00Z")), None, SRC, NOW_MS)
    assert isinstance(result, Reading)


def test_registry_can_be_replaced_at_run_time(validator: Validator, registry: Registry) -> None:
    raw = raw_of(good_record())
    validator.registry = Registry(sites=dict(registry.sites), sensors={})
    assert reject(validator, raw).reason == "unknown_sensor"
    validator.registry = registry
    assert isinstance(validator.validate(raw, None, SRC, NOW_MS), Reading)


# --- every reason code -------------------------------------------------------------------

REASON_CASES: list[tuple[str, bytes, str]] = [
    ("too_large", raw_of(good_record(pad="x" * 1_048_576)), "over the"),
    ("malformed_json", b'{"site_id": "HB-WH-0001",', "not valid JSON"),
    ("malformed_json", b"\xff\xfe{}", "UTF-8"),
    ("malformed_json", b"", "JSON"),
    ("malformed_json", b"   ", "JSON"),
    ("malformed_json", raw_of(good_record())[:-1] + b',"extra":NaN}', "JSON"),
    ("schema_violation", b"[1, 2]", "array, not an object"),
    ("schema_violation", b"null", "null, not an object"),
    ("schema_violation", raw_of(good_record(ts=...)), "missing required field(s): ts"),
    ("schema_violation", raw_of(good_record(value="0.42")), "value must be a number"),
    ("schema_violation", raw_of(good_record(value=True)), "got boolean"),
    ("schema_violation", raw_of(good_record(quality="ok")), "quality"),
    ("bad_timestamp", raw_of(good_record(ts="1795852800000")), "not an RFC 3339"),
    ("schema_violation", raw_of(good_record(ts=1795852800000.5)), "fractional"),
    ("schema_violation", raw_of(good_record(ts=True)), "ts must be"),
    ("schema_violation", raw_of(good_record(site_id="")), "site_id must not be empty"),
    ("schema_violation", raw_of(good_record(schema="ew.telemetry/2")), "ew.telemetry/1"),
    ("schema_violation", raw_of(good_record(site_id="HB-WH-0003")), "belongs to site HB-WH-0001"),
    ("schema_violation", raw_of(good_record(metric="o2")), "measures 'ch4'"),
    ("schema_violation", raw_of(good_record())[:-1] + b',"value":0.5}', "duplicate key 'value'"),
    ("non_finite_value", raw_of(good_record(value=...))[:-1] + b',"value":NaN}', "nan"),
    ("non_finite_value", raw_of(good_record(value=...))[:-1] + b',"value":Infinity}', "inf"),
    ("non_finite_value", raw_of(good_record(value=...))[:-1] + b',"value":-Infinity}', "-inf"),
    ("non_finite_value", raw_of(good_record(value=...))[:-1] + b',"value":1e999}', "inf"),
    ("bad_timestamp", raw_of(good_record(ts="yesterday")), "not an RFC 3339"),
    ("bad_timestamp", raw_of(good_record(ts="2026-11-28T08:00:00")), "not an RFC 3339"),
    ("bad_timestamp", raw_of(good_record(ts="2026-11-28T08:00:00Z\n")), "not an RFC 3339"),
    ("bad_timestamp", raw_of(good_record(ts="2026-02-30T08:00:00Z")), "day is out of range"),
    ("bad_timestamp", raw_of(good_record(ts="2016-12-31T23:59:60Z")), "leap"),
    ("bad_timestamp", raw_of(good_record(ts="2026-11-28T10:00:01Z")), "ahead of"),
    ("bad_timestamp", raw_of(good_record(ts="9999-12-31T23:59:59Z")), "ahead of"),
    ("bad_timestamp", raw_of(good_record(ts="1969-12-31T23:59:59Z")), "outside"),
    ("bad_timestamp", raw_of(good_record(ts=-1)), "outside"),
    ("bad_timestamp", raw_of(good_record(ts=10**30)), "outside"),
    ("unknown_sensor", raw_of(good_record(sensor_id="HB-WH-0001/CH4-99")), "not in the registry"),
    ("unit_mismatch", raw_of(good_record(unit="ppm")), "registry unit '%vol'"),
]


@pytest.mark.parametrize(("reason", "raw", "detail"), REASON_CASES)
def test_reason_code(validator: Validator, reason: str, raw: bytes, detail: str) -> None:
    dl = reject(validator, raw)
    assert (dl.reason, detail in dl.detail) == (reason, True), dl.detail


def test_every_reason_code_is_exercised() -> None:
    assert {reason for reason, _, _ in REASON_CASES} == set(REASON_CODES)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        # schema_violation beats non_finite_value, bad_timestamp and the registry checks
        (b'{"site_id":"","sensor_id":"X","metric":"m","value":NaN,"ts":"bad"}', "schema_violation"),
        # non_finite_value beats bad_timestamp and unknown_sensor
        (
            b'{"site_id":"S","sensor_id":"X","metric":"m","value":NaN,"ts":"bad"}',
            "non_finite_value",
        ),
        # bad_timestamp beats unknown_sensor and unit_mismatch
        (b'{"site_id":"S","sensor_id":"X","metric":"m","value":1,"ts":"bad"}', "bad_timestamp"),
        # unknown_sensor beats unit_mismatch
        (
            b'{"site_id":"S","sensor_id":"X","metric":"m","value":1,"ts":0,"unit":"?"}',
            "unknown_sensor",
        ),
        # a registry disagreement (schema_violation) beats unit_mismatch
        (
            b'{"site_id":"S","sensor_id":"HB-WH-0001/CH4-03","metric":"ch4","value":1,"ts":0,'
            b'"unit":"?"}',
            "schema_violation",
        ),
        # a duplicate key beats a missing field
        (b'{"value":1,"value":2}', "schema_violation"),
    ],
)
def test_precedence(validator: Validator, record: bytes, reason: str) -> None:
    assert reject(validator, record).reason == reason


def test_too_large_is_checked_before_parsing(validator: Validator) -> None:
    small = Validator(validator.registry, ValidationParams(max_bytes=10))
    assert reject(small, b"\xff" * 11).reason == "too_large"
    assert reject(small, b"\xff" * 10).reason == "malformed_json"


def test_future_tolerance_uses_the_later_of_clock_and_watermark(validator: Validator) -> None:
    ahead = raw_of(good_record(ts=NOW_MS + 2 * 3_600_000))
    assert reject(validator, ahead).reason == "bad_timestamp"
    result = validator.validate(ahead, None, SRC, NOW_MS, NOW_MS + 3_600_000)
    assert isinstance(result, Reading)
    strict = Validator(validator.registry, ValidationParams(future_tolerance_ms=0))
    assert reject(strict, raw_of(good_record(ts=NOW_MS + 1))).reason == "bad_timestamp"
    assert isinstance(strict.validate(raw_of(good_record(ts=NOW_MS)), None, SRC, NOW_MS), Reading)


def test_validate_stream_tracks_the_watermark(validator: Validator) -> None:
    hour = 3_600_000
    stamps = [NOW_MS + 50 * 60_000 * i for i in range(1, 6)]  # each 50 min past the previous
    records = [(raw_of(good_record(ts=t)), None, SRC) for t in stamps]
    stream = list(validate_stream(validator, records, NOW_MS))
    assert all(isinstance(r, Reading) for r in stream)
    isolated = [validator.validate(raw, None, SRC, NOW_MS) for raw, _, _ in records]
    assert [isinstance(r, Reading) for r in isolated] == [t - NOW_MS <= hour for t in stamps]


# --- dead letters keep the key and payload exactly ----------------------------------------


def test_dead_letter_fields(validator: Validator) -> None:
    pos = SourcePosition("ew.telemetry", 3, 1042)
    dl = validator.validate(b"{oops", b"HB-WH-0001/CH4-03", pos, NOW_MS)
    assert isinstance(dl, DeadLetter)
    assert dl.to_dict() == {
        "reason": "malformed_json",
        "detail": dl.detail,
        "source": {"topic": "ew.telemetry", "partition": 3, "offset": 1042},
        "key": "HB-WH-0001/CH4-03",
        "payload": "{oops",
        "at": "2026-11-28T08:00:00.000Z",
    }


def test_binary_key_and_payload_are_base64(validator: Validator) -> None:
    raw, key = b"\x00\xff\xfe garbage", b"\xc3\x28"
    dl = validator.validate(raw, key, SRC, NOW_MS)
    assert isinstance(dl, DeadLetter)
    check_dead_letter(dl, raw)
    assert dl.payload_encoding == "base64" and dl.key_encoding == "base64"
    assert dl.key is not None and base64.b64decode(dl.key) == key
    text_key = validator.validate(b"{", "already text", SRC, NOW_MS)
    assert isinstance(text_key, DeadLetter) and text_key.key == "already text"
    assert text_key.key_encoding is None and "key_encoding" not in text_key.to_dict()


# --- robustness ----------------------------------------------------------------------------


def test_five_megabyte_record(validator: Validator) -> None:
    raw = raw_of(good_record(blob="x" * 5_000_000))
    assert reject(validator, raw).reason == "too_large"
    roomy = Validator(validator.registry, ValidationParams(max_bytes=8_000_000))
    assert isinstance(roomy.validate(raw, None, SRC, NOW_MS), Reading)
    dup = raw[:-1] + b',"blob":"y"}'
    assert reject(roomy, dup).reason == "schema_violation"


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b'{"value":NaN,"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"value":1,"x":"\\n","y":' + b"[" * 1000 + b"]" * 1000 + b"}",
        b'{"value":1,"x":1,"x":2,"y":' + b"[" * 1020 + b"]" * 1020 + b"}",
    ],
    ids=["deep-array", "deep-object", "deep-with-nan", "deep-with-escape", "deep-with-dup"],
)
def test_deeply_nested_json(validator: Validator, raw: bytes) -> None:
    roomy = Validator(validator.registry, ValidationParams(max_bytes=10_000_000))
    dl = reject(roomy, raw)
    assert dl.reason in {"malformed_json", "schema_violation"}


def test_random_binary_garbage(validator: Validator) -> None:
    rng = random.Random(20261128)
    for _ in range(3000):
        raw = rng.randbytes(rng.randint(0, 300))
        result = validator.validate(raw, rng.randbytes(4), SRC, NOW_MS)
        assert isinstance(result, DeadLetter)
        assert original_bytes(result) == raw


def _mutations(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            del data[min(pos, len(data) - 1)]
        elif op == 1:
            data[pos:pos] = rng.choice([b":", b"\\", b'"', b",", b"NaN", b"{", b"}", b"\xff", b"1"])
        elif op == 2 and data:
            data[min(pos, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif op == 3:
            del data[pos:]
        else:
            data[pos:pos] = data[rng.randrange(len(data) + 1) :][: rng.randint(1, 20)]
    return bytes(data)


def _ground_truth_duplicate(raw: bytes) -> bool | None:
    """None if the stdlib cannot say (not JSON, or not an object)."""
    found = False

    def hook(pairs: list[tuple[str, object]]) -> dict[str, object]:
        nonlocal found
        found = found or len({k for k, _ in pairs}) != len(pairs)
        return dict(pairs)

    try:
        obj = json.loads(raw.decode("utf-8"), object_pairs_hook=hook)
    except (ValueError, RecursionError):
        return None
    return found if isinstance(obj, dict) else None


def test_fuzz_mutated_valid_records(validator: Validator) -> None:
    """Thousands of near-valid records: one result each, and duplicate keys never slip through."""
    rng = random.Random(7)
    seeds = [
        raw_of(good_record()),
        raw_of(good_record(ts=NOW_MS, note='a:"b"\\c', n=[1, {"k": 2}])),
    ]
    checked_dups = 0
    for i in range(4000):
        raw = _mutations(rng, seeds[i % 2])
        result = validator.validate(raw, None, SRC, NOW_MS)
        assert isinstance(result, Reading | DeadLetter)
        if isinstance(result, DeadLetter):
            assert original_bytes(result) == raw
        truth = _ground_truth_duplicate(raw)
        if truth and orjson_ok(raw):
            checked_dups += 1
            assert isinstance(result, DeadLetter) and "duplicate key" in result.detail
        elif truth is False and isinstance(result, DeadLetter):
            assert "duplicate" not in result.detail
    assert checked_dups > 0


def orjson_ok(raw: bytes) -> bool:
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return True


KEY = st.text(alphabet=':\\"ab\u00e9\n', max_size=3)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), KEY)


def _object_text(depth: int) -> st.SearchStrategy[str]:
    value: st.SearchStrategy[str] = SCALAR.map(json.dumps)
    if depth > 0:
        value = st.one_of(value, st.deferred(lambda: _object_text(depth - 1)))
    pair = st.tuples(KEY.map(json.dumps), value).map(lambda kv: f"{kv[0]}: {kv[1]}")
    return st.lists(pair, max_size=5).map(lambda ps: "{" + ", ".join(ps) + "}")


@given(_object_text(2))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_duplicate_detection_is_exact(text: str) -> None:
    """The fast colon-count check agrees with a full hook-based parse on tricky keys."""
    raw = text.encode()
    truth = _ground_truth_duplicate(raw)
    dl = Validator(Registry()).validate(raw, None, SRC, NOW_MS)
    assert isinstance(dl, DeadLetter)
    assert ("duplicate key" in dl.detail) is bool(truth), (text, dl.detail)


GOOD = st.builds(
    lambda v, t: raw_of(good_record(value=v, ts=t)),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(0, NOW_MS),
)
BAD = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda r: r[: len(r) // 2], GOOD),
    st.builds(lambda r: r[:-1] + b',"value":NaN}', GOOD),
    st.builds(lambda r: r.replace(b'"ts"', b'"ts":1,"ts"'), GOOD),
    st.builds(lambda r: r.replace(b"%vol", b"ppm"), GOOD),
    st.builds(lambda r: r.replace(b"CH4-03", b"CH4-04"), GOOD),
)


@given(st.lists(st.one_of(GOOD, BAD), max_size=40))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_conservation(raws: list[bytes]) -> None:
    validator = Validator(_fixture_registry())
    records = [(raw, f"k{i}".encode(), SourcePosition("t", 1, i)) for i, raw in enumerate(raws)]
    results = list(validate_stream(validator, records, NOW_MS))
    accepted = [r for r in results if isinstance(r, Reading)]
    dead = [r for r in results if isinstance(r, DeadLetter)]
    assert len(accepted) + len(dead) == len(raws) == len(results)
    for (raw, key, pos), result in zip(records, results, strict=True):
        if isinstance(result, DeadLetter):
            check_dead_letter(result, raw)
            assert result.source == pos and result.key == key.decode()


@functools.cache
def _fixture_registry() -> Registry:
    return load_registry(FIXTURE_REGISTRY)


def test_non_bytes_input_is_coerced_not_lost(validator: Validator) -> None:
    for raw in (None, bytearray(b"{"), memoryview(b"[]"), "text", 12):
        result = validator.validate(raw, None, SRC, NOW_MS)  # type: ignore[arg-type]
        assert isinstance(result, DeadLetter)
