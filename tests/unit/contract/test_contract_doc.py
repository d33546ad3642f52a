"""The schemas and the validator agree with ../shared/CONTRACT.md, the external interface."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from pipeline.model import ACTIONS, KINDS, LEVELS
from pipeline.registry import registry_from_dict
from pipeline.validation import REASON_CODES
from schemas import load_schema, validator_for

REPO = Path(__file__).resolve().parents[3]
CONTRACT_PATH = (REPO / ".." / "shared" / "CONTRACT.md").resolve()


@pytest.fixture(scope="module")
def contract() -> str:
    if not CONTRACT_PATH.is_file():
        pytest.fail(f"CONTRACT.md not found at {CONTRACT_PATH} (expected <repo>/../shared/)")
    return CONTRACT_PATH.read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    start = text.index(f"## {heading}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _fenced(section: str, lang: str) -> str:
    match = re.search(rf"```{lang}\n(.*?)```", section, re.S)
    assert match, f"no {lang} block in section"
    return match.group(1)


def test_telemetry_required_fields_match(contract: str) -> None:
    section = _section(contract, "Telemetry reading")
    required_text = section[section.index("- required:") : section.index("- optional:")]
    required = set(re.findall(r"`([a-z_]+)`", required_text))
    assert required == {"site_id", "sensor_id", "metric", "value", "ts"}
    schema = load_schema("telemetry")
    assert set(schema["required"]) == required
    optional_text = section[section.index("- optional:") : section.index("- a reading")]
    for name in ("unit", "quality"):
        assert f"`{name}`" in optional_text and name in schema["properties"]
    qualities = set(re.findall(r"`(\w+)`", optional_text.split("`quality`", 1)[1]))
    assert qualities == set(schema["properties"]["quality"]["enum"])


def test_telemetry_example_is_valid(contract: str) -> None:
    example = json.loads(_fenced(_section(contract, "Telemetry reading"), "json"))
    assert validator_for("telemetry").is_valid(example)


def test_dead_letter_keys_and_reason_codes(contract: str) -> None:
    section = _section(contract, "Dead letter")
    keys = set(re.findall(r'"(\w+)\\?":', section))
    schema = load_schema("deadletter")
    assert keys == {"reason", "detail", "source", "key", "payload", "payload_encoding", "at"}
    assert {"reason", "detail", "source", "key", "payload", "at"} <= set(schema["required"])
    assert "payload_encoding" in schema["properties"]
    source = re.search(r'"source": \{([^}]*)\}', section)
    assert source is not None
    source_keys = set(re.findall(r'"(\w+)"', source.group(1)))
    assert source_keys == set(schema["properties"]["source"]["required"])
    codes_text = section[section.index("Reason codes:") : section.index("Conservation")]
    codes = set(re.findall(r"`([a-z_]+)`", codes_text))
    assert codes == set(REASON_CODES), "validator reason codes differ from the contract"
    assert codes <= set(schema["properties"]["reason"]["enum"])


def test_disposition_keys_and_actions(contract: str) -> None:
    section = _section(contract, "Disposition")
    line = next(x for x in section.splitlines() if x.startswith("`{"))
    keys = set(re.findall(r'"(\w+)":', line))
    schema = load_schema("disposition")
    assert keys == {"alert_id", "action", "by", "at", "note"}
    assert keys <= set(schema["properties"])
    assert {"alert_id", "action", "by"} <= set(schema["required"])
    actions = re.search(r'"action": ([^,]*(?:\| "[a-z]+"\s*)+)', line)
    assert actions is not None
    named = set(re.findall(r'"([a-z]+)"', actions.group(1)))
    assert named == set(ACTIONS) == set(schema["properties"]["action"]["enum"])


def test_alert_event_example_keys_are_required(contract: str) -> None:
    section = _section(contract, "Alert event")
    example = json.loads(_fenced(section, "json"))
    schema = load_schema("alert")
    assert set(example) <= set(schema["required"])
    assert set(example["responsible"]) <= set(schema["properties"]["responsible"]["required"])
    assert validator_for("alert").is_valid(example)
    kinds = section[section.index("- `kind`:") : section.index("- `event`:")]
    named = set(re.findall(r"`(\w+)` \(", kinds))
    assert named == set(KINDS) == set(schema["properties"]["kind"]["enum"])
    assert set(LEVELS) | {None} == set(schema["properties"]["level"]["enum"])


def test_registry_example_matches_schema_and_loader(contract: str) -> None:
    data = yaml.safe_load(_fenced(_section(contract, "Site and sensor registry"), "yaml"))
    assert validator_for("registry").is_valid(data)
    registry = registry_from_dict(data, "CONTRACT.md")
    sensor = registry.sensors["HB-WH-0001/CH4-03"]
    assert sensor.thresholds is not None and sensor.thresholds.limit("orange") == 1.0
    industries = re.search(r"industry: coal_mine\s+# (.*)", _section(contract, "Site and sensor"))
    assert industries is not None
    named = {w.strip() for w in industries.group(1).split("|")}
    assert named == set(load_schema("site")["properties"]["industry"]["enum"])
