"""Every schema is well-formed, documented, versioned, and its labelled examples behave."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import schemas
from schemas import load_schema, schema_names, validator_for

EXAMPLES = Path(schemas.__file__).parent / "examples"
EXPECTED = {"alert", "deadletter", "disposition", "registry", "risk", "sensor", "site", "telemetry"}


def _examples(kind: str) -> list[tuple[str, Path]]:
    return [
        (name, path)
        for name in schema_names()
        for path in sorted((EXAMPLES / name / kind).glob("*.json"))
    ]


def test_schema_names_are_the_shipped_files() -> None:
    assert set(schema_names()) == EXPECTED


def test_load_schema_returns_a_fresh_copy() -> None:
    first = load_schema("telemetry")
    first["required"].clear()
    assert "ts" in load_schema("telemetry")["required"]


def test_unknown_schema_name_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="no schema named"):
        load_schema("nope")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_schema_is_valid_versioned_draft_2020_12(name: str) -> None:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://ewarn.example/schemas/{name}/1"
    assert schema["x-version"] == 1
    if "schema" in schema["properties"]:
        assert schema["properties"]["schema"]["const"] == f"ew.{name}/1"
    validator = validator_for(name)
    assert schema["examples"], "every schema carries examples"
    for example in schema["examples"]:
        assert not list(validator.iter_errors(example))


def _undocumented(node: Any, where: str) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        for prop, sub in node.get("properties", {}).items():
            if not isinstance(sub, dict) or not sub.get("description"):
                out.append(f"{where}.{prop}")
        for key, sub in node.items():
            if key == "examples":
                continue
            out += _undocumented(sub, f"{where}.{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            out += _undocumented(sub, f"{where}[{i}]")
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_property_has_a_description(name: str) -> None:
    assert _undocumented(load_schema(name), name) == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_schema_has_valid_and_invalid_example_files(name: str) -> None:
    assert list((EXAMPLES / name / "valid").glob("*.json"))
    assert list((EXAMPLES / name / "invalid").glob("*.json"))


@pytest.mark.parametrize(("name", "path"), _examples("valid"), ids=lambda p: getattr(p, "stem", p))
def test_valid_example_validates(name: str, path: Path) -> None:
    errors = [e.message for e in validator_for(name).iter_errors(json.loads(path.read_text()))]
    assert errors == []


@pytest.mark.parametrize(
    ("name", "path"), _examples("invalid"), ids=lambda p: getattr(p, "stem", p)
)
def test_invalid_example_fails(name: str, path: Path) -> None:
    assert not validator_for(name).is_valid(json.loads(path.read_text()))


@pytest.mark.parametrize(
    ("name", "path"), _examples("invalid"), ids=lambda p: getattr(p, "stem", p)
)
def test_invalid_example_fails_on_the_rule_its_name_says(name: str, path: Path) -> None:
    """Each invalid file names its broken rule; some error must concern that field or rule."""
    doc = json.loads(path.read_text())
    words = set(path.stem.split("-"))
    hit = False
    for error in validator_for(name).iter_errors(doc):
        errs = [error, *(error.context or [])]
        for e in errs:
            seen = (
                {str(p) for p in e.absolute_path} | {e.validator} | set(str(e.message).split("'"))
            )
            hit = hit or bool(words & seen) or (e.validator == "type" and "object" in words)
    assert hit or words & {"not", "an", "object"}, f"no error of {path.name} matches its name"


def test_date_time_format_is_enforced() -> None:
    """jsonschema silently ignores formats whose checker is missing; ours must check."""
    checker = schemas.format_checker()
    assert checker.conforms("2026-11-28T08:00:00Z", "date-time")
    assert not checker.conforms("2026-13-01T00:00:00Z", "date-time")
    assert not checker.conforms("2026-11-28 08:00:00", "date-time")
