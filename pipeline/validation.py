"""Ingest validation: every raw telemetry record becomes one ``Reading`` or one ``DeadLetter``.

The rules are those of ``schemas/telemetry.json`` plus the checks a schema
cannot express (duplicate keys, event time against the clock, the registry).
``Validator.validate`` never raises: conservation (accepted + dead-lettered ==
input) is the contract, so even an internal error becomes a dead letter.

Precedence, first broken rule wins: ``too_large`` (byte length, before
parsing) > ``malformed_json`` (not UTF-8, not JSON, NaN/Infinity literals other
than as the top-level ``value``) > ``schema_violation`` (not an object,
duplicate key anywhere, missing or wrong-typed field) > ``non_finite_value``
(``value`` is a NaN/Infinity literal or overflows a double) > ``bad_timestamp``
(not RFC 3339 / out of range / more than the tolerance ahead of
``max(now_ms, watermark_ms)``) > ``unknown_sensor`` > ``schema_violation``
(site_id or metric disagrees with the registry) > ``unit_mismatch``.

Decisions worth knowing:

* ``ts``: RFC 3339 with ``T`` and an explicit offset (``Z`` or ``+hh:mm``; ``t``
  and ``z`` also, as RFC 3339 allows; no leap second), truncated to the
  millisecond; or an integer epoch ms in [0, 253402300799999]. A JSON number
  with a zero fraction (``1.7e12``) counts as an integer, as in JSON Schema; a
  fraction or a bool is a ``schema_violation``, a string of digits (not RFC
  3339) a ``bad_timestamp``. Instants before 1970 are ``bad_timestamp`` too.
* Accepted readings carry the registry's unit (equal to the given one if any).
* Dead-letter ``key``: UTF-8 text, or base64 with ``key_encoding: "base64"``
  when the key bytes are not UTF-8; ``payload`` likewise with
  ``payload_encoding``. Both round-trip to the original bytes.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, Final, Literal, get_args

import orjson

from pipeline.model import (
    ACTIONS,
    QUALITIES,
    Action,
    DeadLetter,
    Disposition,
    Quality,
    Reading,
    Registry,
    SourcePosition,
)
from pipeline.timeutil import to_rfc3339

__all__ = [
    "MAX_TS_MS",
    "REASON_CODES",
    "TELEMETRY_SCHEMA",
    "DispositionRejection",
    "ValidationParams",
    "Validator",
    "dead_letter",
    "disposition_to_dict",
    "parse_disposition",
    "parse_timestamp",
    "validate_stream",
]

Reason = Literal[
    "malformed_json",
    "schema_violation",
    "non_finite_value",
    "bad_timestamp",
    "unit_mismatch",
    "unknown_sensor",
    "too_large",
]
REASON_CODES: Final[tuple[Reason, ...]] = get_args(Reason)
TELEMETRY_SCHEMA: Final = "ew.telemetry/1"
MAX_TS_MS: Final = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_REQUIRED: Final = ("site_id", "sensor_id", "metric", "value", "ts")
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)


@dataclass(frozen=True, slots=True)
class ValidationParams:
    """Limits of the ingest validator (defaults are the contract's)."""

    max_bytes: int = 1_048_576
    future_tolerance_ms: int = 3_600_000


class _Reject(Exception):
    """Internal control flow: the first broken rule, turned into a dead letter."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason: Reason = reason
        self.detail = detail


def parse_timestamp(text: str) -> int:
    """Parse a strict RFC 3339 timestamp into epoch ms (truncated), or raise ``ValueError``.

    Stricter than ``datetime.fromisoformat`` (which also takes ISO basic forms,
    missing offsets and spaces) so that it agrees with the schemas' ``date-time``.

    >>> parse_timestamp("2026-11-28T08:00:00.1239+08:00")  # 00:00:00.123Z, truncated
    1795824000123
    """
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise ValueError(f"{text[:60]!r} is not an RFC 3339 timestamp with offset")
    year, month, day, hh, mm, ss, frac, zulu, sign, off_h, off_m = m.groups()
    hour, minute, second = int(hh), int(mm), int(ss)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"{text!r}: time of day out of range (leap seconds not supported)")
    seconds = _epoch_day(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
    if zulu is None:
        oh, om = int(off_h), int(off_m)
        if oh > 23 or om > 59:
            raise ValueError(f"{text!r}: UTC offset out of range")
        seconds -= (oh * 3600 + om * 60) * (1 if sign == "+" else -1)
    millis = int((frac + "00")[:3]) if frac else 0
    return seconds * 1000 + millis


@lru_cache(maxsize=4096)
def _epoch_day(year: str, month: str, day: str) -> int:
    """Days since 1970-01-01; cached because a stream's readings share few dates."""
    return date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL  # ValueError if bad


# --- parsing ---------------------------------------------------------------------------


class _NonFinite:
    """Stand-in for a NaN/Infinity literal (or a number overflowing a double) in the slow path."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _LenientParse:
    """stdlib ``json`` with hooks: finds duplicate keys and marks non-finite literals.

    Used only off the fast path: when orjson rejected the bytes (maybe a NaN
    value), when the record contains a backslash escape, or to name a duplicate
    key already known to exist.
    """

    def __init__(self) -> None:
        self.duplicate: str | None = None

    def pairs(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        if len(out) != len(pairs) and self.duplicate is None:
            seen: set[str] = set()
            for k, _ in pairs:
                if k in seen:
                    self.duplicate = k
                    break
                seen.add(k)
        return out

    @staticmethod
    def number(text: str) -> float | _NonFinite:
        value = float(text)
        return value if math.isfinite(value) else _NonFinite(text)

    @staticmethod
    def integer(text: str) -> int | float | _NonFinite:
        value = int(text)
        if -(2**63) <= value < 2**64:
            return value
        return _LenientParse.number(text)  # as orjson: a float, or infinity

    def loads(self, text: str) -> Any:
        return json.loads(
            text,
            object_pairs_hook=self.pairs,
            parse_constant=_NonFinite,
            parse_float=self.number,
            parse_int=self.integer,
        )


def _pairs_plus_colons(obj: dict[str, Any]) -> int:
    """Number of key/value pairs in ``obj`` (recursively) plus colons inside its strings.

    Outside strings, a colon in JSON text separates exactly one key/value pair;
    so if the text has no ``\\u`` escapes, ``raw.count(b":")`` equals this
    number iff no object had a duplicate key (a duplicate loses a pair, and the
    strings it carried, in the parsed value). Costs one pass over the parsed
    value: much cheaper than a second, hook-driven parse.
    """
    n = 0
    stack: list[Any] = [obj]
    while stack:
        cur = stack.pop()
        items: Iterable[Any]
        if type(cur) is dict:
            n += len(cur)
            for k in cur:
                if ":" in k:
                    n += k.count(":")
            items = cur.values()
        else:
            items = cur
        for v in items:
            t = type(v)
            if t is str:
                if ":" in v:
                    n += v.count(":")
            elif t is dict or t is list:
                stack.append(v)
    return n


def _colons_reserialised(obj: dict[str, Any]) -> int:
    """``_pairs_plus_colons`` computed by orjson: its compact output has one colon per pair
    plus the colons inside strings (it never escapes ``:``). About twice as fast as the
    Python walk; the walk remains for values nested deeper than orjson will serialise.
    """
    try:
        return orjson.dumps(obj).count(b":")
    except orjson.JSONEncodeError:
        return _pairs_plus_colons(obj)


def _walk_strict(obj: Any) -> tuple[int, bool]:
    """Count ``_NonFinite`` markers and report any unencodable (lone surrogate) string."""
    markers, bad_text = 0, False
    stack: list[Any] = [obj]
    while stack:
        cur = stack.pop()
        if isinstance(cur, _NonFinite):
            markers += 1
        elif isinstance(cur, str):
            try:
                cur.encode("utf-8")
            except UnicodeEncodeError:
                bad_text = True
        elif isinstance(cur, dict):
            stack.extend(cur.keys())
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
    return markers, bad_text


def _parse(raw: bytes) -> tuple[Any, str | None]:
    """Parse ``raw``; return ``(value, duplicate_key_or_None)`` or raise ``_Reject``."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _parse_fallback(raw, exc)
    if type(obj) is not dict:
        return obj, None
    escaped = b"\\u" in raw  # a \u003a escape would be a colon the raw count cannot see
    if not escaped and _colons_reserialised(obj) == raw.count(b":"):
        return obj, None
    lenient = _LenientParse()
    try:
        lenient.loads(raw.decode("utf-8"))
    except RecursionError:
        if escaped:
            raise _Reject(
                "schema_violation", "object nested too deeply to check for duplicate keys"
            ) from None
        return obj, "?"
    if lenient.duplicate is None and not escaped:
        return obj, "?"  # the count proves a duplicate the slow path could not name
    return obj, lenient.duplicate


def _parse_fallback(raw: bytes, exc: orjson.JSONDecodeError) -> tuple[Any, str | None]:
    """orjson said no: accept only the case of a non-finite top-level ``value`` literal."""
    malformed = _Reject("malformed_json", f"not valid JSON: {exc}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as uexc:
        raise _Reject("malformed_json", f"not valid UTF-8: {uexc}") from None
    lenient = _LenientParse()
    try:
        obj = lenient.loads(text)
    except (ValueError, RecursionError):
        raise malformed from None
    if type(obj) is not dict or not isinstance(obj.get("value"), _NonFinite):
        raise malformed
    markers, bad_text = _walk_strict(obj)
    if markers != 1 or bad_text:
        raise malformed
    literal = obj["value"].text
    obj["value"] = float("nan") if literal == "NaN" else float(literal)
    return obj, lenient.duplicate


# --- the validator ---------------------------------------------------------------------


def _text(raw: bytes) -> tuple[str, Literal["base64"] | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def _rfc3339_or_epoch(ms: int) -> str:
    try:
        return to_rfc3339(ms)
    except (ValueError, OverflowError, OSError, TypeError):
        return to_rfc3339(0)


def dead_letter(
    raw: bytes,
    key: bytes | str | None,
    source: SourcePosition,
    now_ms: int,
    reason: str,
    detail: str,
) -> DeadLetter:
    """Build a dead letter that keeps ``raw`` and ``key`` byte for byte (see module doc)."""
    payload, payload_encoding = _text(raw)
    key_text: str | None
    key_encoding: Literal["base64"] | None = None
    if key is None:
        key_text = None
    elif isinstance(key, str):
        key_text = key
    else:
        key_text, key_encoding = _text(bytes(key))
    return DeadLetter(
        reason=reason,
        detail=detail,
        source=source,
        key=key_text,
        payload=payload,
        at=_rfc3339_or_epoch(now_ms),
        payload_encoding=payload_encoding,
        key_encoding=key_encoding,
    )


def _as_bytes(raw: object) -> bytes:
    """Callers should pass bytes; anything else is coerced rather than lost."""
    if isinstance(raw, bytes):
        return raw
    if raw is None:
        return b""
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogatepass")
    if isinstance(raw, bytearray | memoryview):
        return bytes(raw)
    try:
        return repr(raw).encode("utf-8", "backslashreplace")
    except Exception:
        return b"<unrepresentable>"


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _require_text(obj: dict[str, Any], name: str) -> str:
    v = obj[name]
    if type(v) is not str:
        raise _Reject("schema_violation", f"{name} must be a string, got {_type_name(v)}")
    if not v:
        raise _Reject("schema_violation", f"{name} must not be empty")
    return v


class Validator:
    """Turns raw telemetry bytes into a ``Reading`` or a ``DeadLetter``.

    ``registry`` may be replaced at run time (the registry agent swaps in a new
    immutable ``Registry``); the validator holds no other state.
    """

    __slots__ = ("params", "registry")

    def __init__(self, registry: Registry, params: ValidationParams | None = None) -> None:
        self.registry = registry
        self.params = params if params is not None else ValidationParams()

    def validate(
        self,
        raw: bytes,
        key: bytes | str | None,
        source: SourcePosition,
        now_ms: int,
        watermark_ms: int | None = None,
    ) -> Reading | DeadLetter:
        """Exactly one result per input; never raises.

        >>> # Validator(reg).validate(b'{"site_id": ...}', b"HB-WH-0001/CH4-03", pos, now)
        """
        raw = _as_bytes(raw)
        try:
            return self._validate(raw, now_ms, watermark_ms)
        except _Reject as r:
            return dead_letter(raw, key, source, now_ms, r.reason, r.detail)
        except Exception as exc:  # conservation beats everything: never lose a record
            detail = f"validator error {type(exc).__name__}: {exc}"[:500]
            return dead_letter(raw, key, source, now_ms, "schema_violation", detail)

    def _validate(self, raw: bytes, now_ms: int, watermark_ms: int | None) -> Reading:
        size = len(raw)
        if size > self.params.max_bytes:
            raise _Reject(
                "too_large", f"record is {size} bytes, over the {self.params.max_bytes}-byte limit"
            )
        obj, duplicate = _parse(raw)
        if type(obj) is not dict:
            raise _Reject("schema_violation", f"record is a JSON {_type_name(obj)}, not an object")
        if duplicate is not None:
            name = "" if duplicate == "?" else f" {duplicate!r}"
            raise _Reject("schema_violation", f"duplicate key{name} in the record")
        try:
            site_id, sensor_id, metric = obj["site_id"], obj["sensor_id"], obj["metric"]
            value, ts_raw = obj["value"], obj["ts"]
        except KeyError:
            missing = ", ".join(f for f in _REQUIRED if f not in obj)
            raise _Reject("schema_violation", f"missing required field(s): {missing}") from None
        if not (
            type(site_id) is str
            and site_id
            and type(sensor_id) is str
            and sensor_id
            and type(metric) is str
            and metric
        ):  # one combined test on the hot path; the slow path says which field
            for name in ("site_id", "sensor_id", "metric"):
                _require_text(obj, name)
        if type(value) is not float and type(value) is not int:
            raise _Reject("schema_violation", f"value must be a number, got {_type_name(value)}")
        if type(ts_raw) is float and ts_raw.is_integer():
            ts_raw = int(ts_raw)
        if type(ts_raw) is not str and type(ts_raw) is not int:
            kind = "a fractional number" if type(ts_raw) is float else _type_name(ts_raw)
            raise _Reject(
                "schema_violation",
                f"ts must be an RFC 3339 string or integer epoch ms, got {kind}",
            )
        unit = _require_text(obj, "unit") if "unit" in obj else None
        quality: Quality = "good"
        if "quality" in obj:
            q = obj["quality"]
            if type(q) is not str or q not in QUALITIES:
                raise _Reject(
                    "schema_violation", f"quality must be one of {', '.join(QUALITIES)}, got {q!r}"
                )
            quality = q
        if "schema" in obj and obj["schema"] != TELEMETRY_SCHEMA:
            raise _Reject(
                "schema_violation", f"schema {obj['schema']!r} is not {TELEMETRY_SCHEMA!r}"
            )
        fvalue = float(value)
        if not math.isfinite(fvalue):
            raise _Reject("non_finite_value", f"value is {fvalue!r}, not a finite number")
        ts = self._event_time(ts_raw, now_ms, watermark_ms)
        sensor = self.registry.sensors.get(sensor_id)
        if sensor is None:
            raise _Reject("unknown_sensor", f"sensor {sensor_id!r} is not in the registry")
        if site_id != sensor.site_id:
            raise _Reject(
                "schema_violation",
                f"site_id {site_id!r} disagrees with the registry: sensor {sensor_id} "
                f"belongs to site {sensor.site_id}",
            )
        if metric != sensor.metric:
            raise _Reject(
                "schema_violation",
                f"metric {metric!r} disagrees with the registry: sensor {sensor_id} "
                f"measures {sensor.metric!r}",
            )
        if unit is not None and unit != sensor.unit:
            raise _Reject(
                "unit_mismatch",
                f"unit {unit!r} differs from the registry unit {sensor.unit!r} "
                f"of sensor {sensor_id}",
            )
        return Reading(site_id, sensor_id, metric, fvalue, ts, sensor.unit, quality)

    def _event_time(self, ts_raw: str | int, now_ms: int, watermark_ms: int | None) -> int:
        if type(ts_raw) is str:
            try:
                ts = parse_timestamp(ts_raw)
            except ValueError as exc:
                raise _Reject("bad_timestamp", f"ts: {exc}") from None
        else:
            ts = int(ts_raw)
        if not 0 <= ts <= MAX_TS_MS:
            raise _Reject("bad_timestamp", f"ts {ts_raw!r} is outside 1970-01-01 .. 9999-12-31")
        reference = now_ms if watermark_ms is None else max(now_ms, watermark_ms)
        ahead = ts - reference
        if ahead > self.params.future_tolerance_ms:
            raise _Reject(
                "bad_timestamp",
                f"ts {_rfc3339_or_epoch(ts)} is {ahead / 1000:.0f} s ahead of "
                f"{_rfc3339_or_epoch(reference)} (tolerance "
                f"{self.params.future_tolerance_ms / 1000:.0f} s)",
            )
        return ts


def validate_stream(
    validator: Validator,
    records: Iterable[tuple[bytes, bytes | str | None, SourcePosition]],
    now_ms: int,
    watermark_ms: int | None = None,
) -> Iterator[Reading | DeadLetter]:
    """Validate records in arrival order, tracking the event-time watermark.

    The watermark is the largest ``ts`` accepted so far; with it a replay of
    data "from the future" (relative to ``now_ms``) is accepted as long as it
    advances no faster than the tolerance per record.
    """
    for raw, key, source in records:
        result = validator.validate(raw, key, source, now_ms, watermark_ms)
        if isinstance(result, Reading) and (watermark_ms is None or result.ts > watermark_ms):
            watermark_ms = result.ts
        yield result


# --- dispositions ----------------------------------------------------------------------


class DispositionRejection(str):
    """A rejected disposition: the string is the reason code; ``detail`` says why."""

    __slots__ = ("detail",)
    detail: str

    def __new__(cls, reason: str, detail: str) -> DispositionRejection:
        self = super().__new__(cls, reason)
        self.detail = detail
        return self


def parse_disposition(raw: bytes, now_ms: int) -> Disposition | DispositionRejection:
    """Validate an ``ew.dispositions`` message; a rejection is a reason code (a ``str``).

    ``at`` defaults to ``now_ms`` when absent; ``note`` is optional text.
    """
    try:
        obj, duplicate = _parse(raw)
    except _Reject as r:
        return DispositionRejection(r.reason, r.detail)
    except Exception as exc:
        return DispositionRejection("malformed_json", f"{type(exc).__name__}: {exc}")

    def bad(detail: str) -> DispositionRejection:
        return DispositionRejection("schema_violation", detail)

    if type(obj) is not dict:
        return bad(f"disposition is a JSON {_type_name(obj)}, not an object")
    if duplicate is not None:
        return bad("duplicate key in the disposition")
    for name in ("alert_id", "action", "by"):
        if name not in obj:
            return bad(f"missing required field {name}")
        if type(obj[name]) is not str or not obj[name]:
            return bad(f"{name} must be a non-empty string")
    action = obj["action"]
    if action not in ACTIONS:
        return bad(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    at = now_ms
    if "at" in obj:
        if type(obj["at"]) is not str:
            return bad("at must be an RFC 3339 string")
        try:
            at = parse_timestamp(obj["at"])
        except ValueError as exc:
            return DispositionRejection("bad_timestamp", f"at: {exc}")
    note = obj.get("note")
    if note is not None and type(note) is not str:
        return bad("note must be a string or null")
    act: Action = action
    return Disposition(alert_id=obj["alert_id"], action=act, by=obj["by"], at=at, note=note)


def disposition_to_dict(d: Disposition) -> dict[str, Any]:
    """The ``ew.dispositions`` JSON form (``at`` as RFC 3339)."""
    return {
        "alert_id": d.alert_id,
        "action": d.action,
        "by": d.by,
        "at": to_rfc3339(d.at),
        "note": d.note,
    }
