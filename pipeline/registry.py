"""The site and sensor registry: loading the file, and its compacted-topic form.

Two layers of checks. ``schemas/registry.json`` (jsonschema) catches every
structural mistake (missing field, wrong type, unknown industry, a typo inside
``thresholds``); this module adds what a schema cannot say: unique ids, sensors
pointing at existing sites, finite numbers, ``range`` lo < hi, and alarm levels
strictly ordered in the direction of danger. Every error names the file (and
line, for YAML), the site or sensor, the field and why::

    registry.yaml:31: sensor HB-WH-0001/CH4-03: thresholds.levels:
        orange 0.7 is not above yellow 0.75      (one line in reality)

On ``ew.registry`` (compacted, key = site_id or sensor_id) each value is one
record with ``type: "site" | "sensor"``; a tombstone (``None``) deletes the key.
Sensors may arrive before their site there (partitions are not ordered with
each other), so the topic form does not check that the site exists.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import yaml

from pipeline.model import (
    LEVELS,
    Direction,
    Industry,
    Level,
    RateLimit,
    Registry,
    Sensor,
    Site,
    Thresholds,
    Unit,
)

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

__all__ = [
    "RegistryError",
    "apply_registry_record",
    "apply_registry_records",
    "load_registry",
    "registry_from_dict",
    "registry_record_to_dict",
    "registry_to_records",
]

Path_ = tuple[str | int, ...]
LineOf = Callable[[Path_], int | None]


class RegistryError(Exception):
    """A registry that cannot be used; the message is one line naming file, record and field."""

    def __init__(self, message: str, *, source: str = "", line: int | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.line = line


class _FieldError(Exception):
    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field}: {why}")
        self.field = field
        self.why = why


@cache
def _validator(name: str) -> Validator:
    from schemas import validator_for

    return validator_for(name, check_formats=False)


# --- reading files ---------------------------------------------------------------------


def load_registry(path: str | Path) -> Registry:
    """Load and check a registry file (``.json``: JSON; anything else: YAML).

    Raises ``RegistryError`` (never a parser's own exception) so that callers
    can print a one-line message.
    """
    p = Path(path)
    source = p.name
    try:
        raw = p.read_bytes()
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise RegistryError(f"{source}: cannot read: {why}", source=source) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RegistryError(f"{source}: not UTF-8 text: {exc}", source=source) from None
    line_of: LineOf | None = None
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RegistryError(
                f"{source}:{exc.lineno}: not valid JSON: {exc.msg}", source=source, line=exc.lineno
            ) from None
        except RecursionError:
            raise RegistryError(f"{source}: JSON nested too deeply", source=source) from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = None if mark is None else mark.line + 1
            where = f"{source}:{line}" if line else source
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise RegistryError(
                f"{where}: not valid YAML: {problem}", source=source, line=line
            ) from None
        line_of = _yaml_line_finder(text)
    return registry_from_dict(data, source, line_of=line_of)


def _yaml_line_finder(text: str) -> LineOf:
    """Map a data path to its 1-based line in the YAML text (composed lazily, on error only)."""

    def line_of(path: Path_) -> int | None:
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            return None
        best = None if node is None else node.start_mark.line + 1
        for part in path:
            pair = None  # (node whose line to report, node to descend into)
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                pair = next(
                    ((k, v) for k, v in node.value if getattr(k, "value", None) == part), None
                )
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(part, int)
                and 0 <= part < len(node.value)
            ):
                pair = (node.value[part], node.value[part])
            if pair is None:
                break
            best = pair[0].start_mark.line + 1  # the key's line: where the field is written
            node = pair[1]
        return best

    return line_of


# --- whole-registry checks -------------------------------------------------------------


def _entity(data: Any, path: Path_) -> tuple[str, Path_]:
    """Describe the record a path points into (``sensor X``), and the path inside it."""
    if len(path) >= 2 and path[0] in ("sites", "sensors") and isinstance(path[1], int):
        kind, idx = ("site", "site_id") if path[0] == "sites" else ("sensor", "sensor_id")
        try:
            rid = data[path[0]][path[1]].get(idx)
        except (AttributeError, IndexError, KeyError, TypeError):
            rid = None
        name = f"{kind} {rid}" if isinstance(rid, str) and rid else f"{path[0]}[{path[1]}]"
        return name, path[2:]
    return "registry", path


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _raise(
    source: str, line_of: LineOf | None, data: Any, path: Path_, why: str, field: str | None = None
) -> NoReturn:
    entity, inner = _entity(data, path)
    field_text = field if field is not None else _dotted(inner)
    line = line_of(path) if line_of is not None else None
    where = f"{source}:{line}" if line else source
    parts = [where, entity] + ([field_text] if field_text else []) + [why]
    raise RegistryError(": ".join(parts), source=source, line=line)


def _schema_message(error: Any) -> str:
    if error.validator == "required":
        return str(error.message).replace(" is a required property", " is required")
    if error.validator == "additionalProperties":
        return f"unknown field ({error.message})"
    if error.validator == "oneOf":
        return f"{error.instance!r} is neither null nor a valid value"
    return str(error.message)


def registry_from_dict(
    data: Any, source: str = "registry", *, line_of: LineOf | None = None
) -> Registry:
    """Check a parsed registry (``{sites: [...], sensors: [...]}``) and build it.

    ``source`` names the origin in error messages (usually the file name).
    """
    from jsonschema.exceptions import best_match

    if not isinstance(data, Mapping):
        raise RegistryError(
            f"{source}: top level must be a mapping with 'sites' and 'sensors'", source=source
        )
    error = best_match(_validator("registry").iter_errors(data))
    if error is not None:
        err_path: Path_ = tuple(error.absolute_path)
        _raise(source, line_of, data, err_path, _schema_message(error))
    sites: dict[str, Site] = {}
    for i, d in enumerate(data["sites"]):
        try:
            site = _site_from_dict(d)
        except _FieldError as exc:
            _raise(source, line_of, data, ("sites", i, *exc.field.split(".")), exc.why, exc.field)
        if site.site_id in sites:
            _raise(source, line_of, data, ("sites", i, "site_id"), "duplicate site_id", "site_id")
        sites[site.site_id] = site
    sensors: dict[str, Sensor] = {}
    for i, d in enumerate(data["sensors"]):
        try:
            sensor = _sensor_from_dict(d)
        except _FieldError as exc:
            field_path: Path_ = ("sensors", i, *exc.field.split("."))
            _raise(source, line_of, data, field_path, exc.why, exc.field)
        if sensor.sensor_id in sensors:
            _raise(source, line_of, data, ("sensors", i, "sensor_id"), "duplicate sensor_id")
        if sensor.site_id not in sites:
            why = f"no site {sensor.site_id!r} in the registry"
            _raise(source, line_of, data, ("sensors", i, "site_id"), why)
        sensors[sensor.sensor_id] = sensor
    return Registry(sites=sites, sensors=sensors)


# --- one record ------------------------------------------------------------------------


def _finite(value: Any, field: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise _FieldError(field, f"{value!r} is not a finite number")
    return number


def _site_from_dict(d: Mapping[str, Any]) -> Site:
    """Build a site from a schema-valid dict."""
    unit = d["unit"]
    region = d["region"]
    industry: Industry = d["industry"]
    return Site(
        site_id=d["site_id"],
        name=d["name"],
        address=d["address"],
        unit=Unit(name=unit["name"], credit_code=unit.get("credit_code")),
        industry=industry,
        region=(region[0], region[1], region[2]),
        regulator=d["regulator"],
        hazard_grade=d.get("hazard_grade"),
    )


def _thresholds(t: Mapping[str, Any]) -> Thresholds:
    direction: Direction = t["direction"]
    levels = t["levels"]
    ordered: list[tuple[Level, float]] = []
    for name in LEVELS:
        if name in levels:
            ordered.append((name, _finite(levels[name], f"thresholds.levels.{name}")))
    for (lower, a), (upper, b) in itertools.pairwise(ordered):
        if direction == "high" and not b > a:
            raise _FieldError("thresholds.levels", f"{upper} {b:g} is not above {lower} {a:g}")
        if direction == "low" and not b < a:
            raise _FieldError("thresholds.levels", f"{upper} {b:g} is not below {lower} {a:g}")
    return Thresholds(
        direction=direction,
        levels=tuple(ordered),
        hysteresis=_finite(t.get("hysteresis", 0.0), "thresholds.hysteresis"),
        delay_s=_finite(t.get("delay_s", 0.0), "thresholds.delay_s"),
    )


def _sensor_from_dict(d: Mapping[str, Any]) -> Sensor:
    """Build a sensor from a schema-valid dict, checking what the schema cannot."""
    interval_s = _finite(d["interval_s"], "interval_s")
    range_: tuple[float, float] | None = None
    if d.get("range") is not None:
        lo = _finite(d["range"][0], "range")
        hi = _finite(d["range"][1], "range")
        if not lo < hi:
            raise _FieldError("range", f"lo {lo:g} is not below hi {hi:g}")
        range_ = (lo, hi)
    thresholds = None if d.get("thresholds") is None else _thresholds(d["thresholds"])
    rate_limit = None
    if d.get("rate_limit") is not None:
        r = d["rate_limit"]
        level: Level = r.get("level", "yellow")
        rate_limit = RateLimit(_finite(r["per_minute"], "rate_limit.per_minute"), level)
    return Sensor(
        sensor_id=d["sensor_id"],
        site_id=d["site_id"],
        metric=d["metric"],
        unit=d["unit"],
        interval_s=interval_s,
        range=range_,
        thresholds=thresholds,
        rate_limit=rate_limit,
    )


# --- the compacted-topic form ----------------------------------------------------------


def registry_record_to_dict(record: Site | Sensor) -> dict[str, Any]:
    """The ``ew.registry`` value of a site or sensor (``type`` says which).

    >>> registry_record_to_dict(sensor)["type"]  # doctest: +SKIP
    'sensor'
    """
    if isinstance(record, Site):
        return {
            "type": "site",
            "site_id": record.site_id,
            "name": record.name,
            "address": record.address,
            "unit": {"name": record.unit.name, "credit_code": record.unit.credit_code},
            "industry": record.industry,
            "region": list(record.region),
            "regulator": record.regulator,
            "hazard_grade": record.hazard_grade,
        }
    t = record.thresholds
    r = record.rate_limit
    return {
        "type": "sensor",
        "sensor_id": record.sensor_id,
        "site_id": record.site_id,
        "metric": record.metric,
        "unit": record.unit,
        "interval_s": record.interval_s,
        "range": None if record.range is None else list(record.range),
        "thresholds": None
        if t is None
        else {
            "direction": t.direction,
            "levels": dict(t.levels),
            "hysteresis": t.hysteresis,
            "delay_s": t.delay_s,
        },
        "rate_limit": None if r is None else {"per_minute": r.per_minute, "level": r.level},
    }


def registry_to_records(registry: Registry) -> list[tuple[str, dict[str, Any]]]:
    """``(key, value)`` pairs to publish on ``ew.registry``: sites first, ids sorted."""
    out: list[tuple[str, dict[str, Any]]] = [
        (sid, registry_record_to_dict(registry.sites[sid])) for sid in sorted(registry.sites)
    ]
    out += [
        (sid, registry_record_to_dict(registry.sensors[sid])) for sid in sorted(registry.sensors)
    ]
    return out


def _record_from_dict(record: Any, key: str, source: str) -> Site | Sensor:
    if not isinstance(record, Mapping):
        raise RegistryError(f"{source}: key {key}: record is not an object", source=source)
    kind = record.get("type")
    if kind is None:
        kind = "sensor" if "sensor_id" in record else "site"
    if kind not in ("site", "sensor"):
        raise RegistryError(f"{source}: key {key}: type {kind!r} is not site or sensor")
    id_field = f"{kind}_id"
    error = next(iter(_validator(kind).iter_errors(record)), None)
    if error is not None:
        from jsonschema.exceptions import best_match

        error = best_match(_validator(kind).iter_errors(record))
        field = _dotted(tuple(error.absolute_path)) if error is not None else ""
        rid = record.get(id_field, key)
        parts = [source, f"{kind} {rid}", *([field] if field else []), _schema_message(error)]
        raise RegistryError(": ".join(parts), source=source)
    if record[id_field] != key:
        raise RegistryError(
            f"{source}: {kind} {record[id_field]}: {id_field}: does not match the key {key!r}",
            source=source,
        )
    try:
        return _site_from_dict(record) if kind == "site" else _sensor_from_dict(record)
    except _FieldError as exc:
        raise RegistryError(f"{source}: {kind} {key}: {exc}", source=source) from None


def apply_registry_records(
    registry: Registry,
    records: Iterable[tuple[str | bytes, Mapping[str, Any] | None]],
    source: str = "ew.registry",
) -> Registry:
    """Apply many ``(key, record or tombstone)`` pairs, copying the tables once.

    Raises ``RegistryError`` on the first bad record (nothing is applied then).
    """
    sites = dict(registry.sites)
    sensors = dict(registry.sensors)
    for raw_key, record in records:
        key = raw_key.decode("utf-8", "replace") if isinstance(raw_key, bytes) else raw_key
        if record is None:
            sites.pop(key, None)
            sensors.pop(key, None)
            continue
        built = _record_from_dict(record, key, source)
        if isinstance(built, Site):
            sites[key] = built
        else:
            sensors[key] = built
    return Registry(sites=sites, sensors=sensors)


def apply_registry_record(
    registry: Registry,
    record: Mapping[str, Any] | None,
    key: str | bytes,
    source: str = "ew.registry",
) -> Registry:
    """A new registry with one ``ew.registry`` record applied; ``None`` (tombstone) deletes ``key``.

    The record must be a valid site or sensor whose id equals ``key``, else
    ``RegistryError`` (the caller logs it and keeps the old registry).
    """
    return apply_registry_records(registry, [(key, record)], source)
