"""Registry loading: good files build the model, bad ones name file, record, field and why."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.model import Registry, Thresholds
from pipeline.registry import (
    RegistryError,
    apply_registry_record,
    apply_registry_records,
    load_registry,
    registry_from_dict,
    registry_record_to_dict,
    registry_to_records,
)
from tests.unit.contract.conftest import FIXTURE_REGISTRY

CH4 = "HB-WH-0001/CH4-03"


@pytest.fixture
def data() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(FIXTURE_REGISTRY.read_text())
    return loaded


def test_fixture_builds_the_model(registry: Registry) -> None:
    assert {s.industry for s in registry.sites.values()} == {
        "coal_mine",
        "hazardous_chemicals",
        "construction",
    }
    ch4, o2 = registry.sensors[CH4], registry.sensors["HB-WH-0001/O2-01"]
    assert ch4.thresholds == Thresholds(
        "high", (("blue", 0.5), ("yellow", 0.75), ("orange", 1.0), ("red", 1.5)), 0.05, 0.0
    )
    assert o2.thresholds is not None and o2.thresholds.direction == "low"
    assert ch4.rate_limit is not None and ch4.rate_limit.per_minute == 0.2
    assert ch4.range == (0.0, 100.0)
    tilt = registry.sensors["HB-WH-0003/CRANE1-TILT"]
    assert tilt.thresholds is None and tilt.rate_limit is None
    assert registry.responsible("HB-WH-0001").territory == ("Hubei", "Wuhan", "Jiangxia")
    assert registry.sites["HB-WH-0003"].hazard_grade is None


def test_json_file_loads_the_same(tmp_path: Path, data: dict[str, Any], registry: Registry) -> None:
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(data))
    assert load_registry(path) == registry


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = d
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is ...:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return apply


BAD_CASES: list[tuple[str, Callable[[dict[str, Any]], None], list[str]]] = [
    (
        "levels-not-ascending",
        _set("sensors.0.thresholds.levels.orange", 0.7),
        [f"sensor {CH4}", "thresholds.levels", "orange 0.7 is not above yellow 0.75"],
    ),
    (
        "low-levels-not-descending",
        _set("sensors.1.thresholds.levels.red", 19.9),
        ["sensor HB-WH-0001/O2-01", "thresholds.levels", "red 19.9 is not below orange 18.5"],
    ),
    (
        "equal-levels",
        _set("sensors.0.thresholds.levels.blue", 0.75),
        [f"sensor {CH4}", "yellow 0.75 is not above blue 0.75"],
    ),
    ("unit-empty", _set("sensors.0.unit", ""), [f"sensor {CH4}", "unit", "non-empty"]),
    ("interval-zero", _set("sensors.0.interval_s", 0), [f"sensor {CH4}", "interval_s"]),
    (
        "interval-negative",
        _set("sensors.2.interval_s", -5),
        ["sensor HB-WH-0001/CO-02", "interval_s"],
    ),
    ("range-reversed", _set("sensors.0.range", [100, 0]), [f"sensor {CH4}", "range", "lo 100"]),
    ("range-equal", _set("sensors.0.range", [1, 1]), [f"sensor {CH4}", "range"]),
    (
        "hysteresis-negative",
        _set("sensors.0.thresholds.hysteresis", -0.1),
        [f"sensor {CH4}", "thresholds.hysteresis"],
    ),
    (
        "level-nan",
        _set("sensors.0.thresholds.levels.red", float("nan")),
        [f"sensor {CH4}", "thresholds.levels.red", "not a finite number"],
    ),
    (
        "typo-in-thresholds",
        _set("sensors.0.thresholds.hysterisis", 0.1),
        [f"sensor {CH4}", "thresholds", "hysterisis"],
    ),
    (
        "unknown-level",
        _set("sensors.0.thresholds.levels.green", 0.1),
        [f"sensor {CH4}", "thresholds", "green"],
    ),
    (
        "direction-bad",
        _set("sensors.0.thresholds.direction", "up"),
        [f"sensor {CH4}", "thresholds.direction", "'up'"],
    ),
    (
        "unknown-site",
        _set("sensors.0.site_id", "HB-XX-9999"),
        [f"sensor {CH4}", "site_id", "no site 'HB-XX-9999'"],
    ),
    (
        "duplicate-sensor",
        lambda d: d["sensors"].append(copy.deepcopy(d["sensors"][0])),
        [f"sensor {CH4}", "duplicate sensor_id"],
    ),
    (
        "duplicate-site",
        lambda d: d["sites"].append(copy.deepcopy(d["sites"][1])),
        ["site JS-NJ-0002", "duplicate site_id"],
    ),
    (
        "industry-unknown",
        _set("sites.1.industry", "chemistry"),
        ["site JS-NJ-0002", "industry", "'chemistry'"],
    ),
    ("hazard-grade-5", _set("sites.0.hazard_grade", 5), ["site HB-WH-0001", "hazard_grade"]),
    ("region-short", _set("sites.2.region", ["Hubei", "Wuhan"]), ["site HB-WH-0003", "region"]),
    ("unit-missing", _set("sites.0.unit", ...), ["site HB-WH-0001", "'unit' is required"]),
    (
        "rate-limit-zero",
        _set("sensors.0.rate_limit.per_minute", 0),
        [f"sensor {CH4}", "rate_limit.per_minute"],
    ),
    (
        "sensor-id-missing",
        _set("sensors.3.sensor_id", ...),
        ["sensors[3]", "'sensor_id' is required"],
    ),
    ("sensors-missing", _set("sensors", ...), ["registry", "'sensors' is required"]),
]


@pytest.mark.parametrize(("case", "mutate", "expected"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_registry_names_record_and_field(
    tmp_path: Path,
    data: dict[str, Any],
    case: str,
    mutate: Callable[[dict[str, Any]], None],
    expected: list[str],
) -> None:
    mutate(data)
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    message = str(info.value)
    assert message.startswith("registry.yaml:"), message
    assert "\n" not in message
    for part in expected:
        assert part in message, message


def test_error_line_points_into_the_record(tmp_path: Path, data: dict[str, Any]) -> None:
    data["sensors"][0]["thresholds"]["levels"]["orange"] = 0.7
    text = yaml.safe_dump(data, sort_keys=False)
    path = tmp_path / "registry.yaml"
    path.write_text(text)
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    line = info.value.line
    assert line is not None and str(info.value).startswith(f"registry.yaml:{line}: ")
    lines = text.splitlines()
    record_start = next(i for i, x in enumerate(lines, 1) if CH4 in x and "sensor_id" in x)
    assert record_start <= line < record_start + 20
    assert "levels" in lines[line - 1] or "orange" in lines[line - 1]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("registry.yaml", "sites: [\n  - x\n", "registry.yaml:"),
        ("registry.json", '{"sites": [}', "registry.json:1: not valid JSON"),
        ("registry.yaml", "- just\n- a list\n", "top level must be a mapping"),
        ("registry.yaml", "", "top level must be a mapping"),
    ],
)
def test_unparseable_files(tmp_path: Path, name: str, content: str, expected: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(RegistryError, match=expected.replace(".", r"\.")):
        load_registry(path)


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"^nothing\.yaml: cannot read"):
        load_registry(tmp_path / "nothing.yaml")


def test_registry_from_dict_names_its_source(data: dict[str, Any]) -> None:
    data["sites"][0]["industry"] = "mine"
    with pytest.raises(RegistryError, match=r"^ops-upload: site HB-WH-0001: industry"):
        registry_from_dict(data, "ops-upload")


# --- the compacted-topic form --------------------------------------------------------------


def test_records_rebuild_the_same_registry(registry: Registry) -> None:
    records = registry_to_records(registry)
    keys = [k for k, _ in records]
    assert len(keys) == len(set(keys)) == len(registry.sites) + len(registry.sensors)
    wire = [(k.encode(), json.loads(json.dumps(v))) for k, v in records]  # through JSON
    rebuilt = Registry()
    for key, value in reversed(wire):  # sensors before their sites: allowed on the topic
        rebuilt = apply_registry_record(rebuilt, value, key)
    assert rebuilt == registry
    assert apply_registry_records(Registry(), wire) == registry


def test_tombstone_removes_and_update_replaces(registry: Registry) -> None:
    without = apply_registry_record(registry, None, CH4)
    assert CH4 not in without.sensors and CH4 in registry.sensors, "the input is not mutated"
    record = registry_record_to_dict(registry.sensors[CH4])
    record["unit"] = "ppm"
    updated = apply_registry_record(registry, record, CH4)
    assert updated.sensors[CH4].unit == "ppm" and registry.sensors[CH4].unit == "%vol"
    assert apply_registry_record(registry, None, "HB-WH-0003").sites.keys() == {
        "HB-WH-0001",
        "JS-NJ-0002",
    }
    assert apply_registry_record(registry, None, "no-such-key") == registry


@pytest.mark.parametrize(
    ("change", "key", "expected"),
    [
        ({"interval_s": -1}, CH4, "interval_s"),
        (
            {"thresholds": {"direction": "high", "levels": {"blue": 2, "red": 1}}},
            CH4,
            "red 1 is not above blue 2",
        ),
        ({}, "HB-WH-0001/OTHER", "does not match the key"),
        ({"type": "gateway"}, CH4, "is not site or sensor"),
    ],
)
def test_bad_topic_record_is_rejected(
    registry: Registry, change: dict[str, Any], key: str, expected: str
) -> None:
    record = {**registry_record_to_dict(registry.sensors[CH4]), **change}
    with pytest.raises(RegistryError, match=expected):
        apply_registry_record(registry, record, key)


def test_record_without_type_is_inferred(registry: Registry) -> None:
    record = registry_record_to_dict(registry.sites["HB-WH-0001"])
    del record["type"]
    assert apply_registry_record(Registry(), record, "HB-WH-0001").sites == {
        "HB-WH-0001": registry.sites["HB-WH-0001"]
    }
