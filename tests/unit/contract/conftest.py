"""Fixtures of the contract tests: the shared test registry, a validator, a fixed clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.model import Registry, SourcePosition
from pipeline.registry import load_registry
from pipeline.validation import Validator

REPO = Path(__file__).resolve().parents[3]
FIXTURE_REGISTRY = REPO / "tests" / "fixtures" / "registry.yaml"
NOW_MS = 1_795_852_800_000  # 2026-11-28T08:00:00Z: the contract's example time
SRC = SourcePosition("ew.telemetry", 0, 0)


def good_record(**overrides: object) -> dict[str, object]:
    """A telemetry dict the fixture registry accepts at ``NOW_MS``."""
    record: dict[str, object] = {
        "site_id": "HB-WH-0001",
        "sensor_id": "HB-WH-0001/CH4-03",
        "metric": "ch4",
        "value": 0.42,
        "unit": "%vol",
        "ts": "2026-11-28T08:00:00.000Z",
        "quality": "good",
    }
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not ...}


@pytest.fixture(scope="session")
def registry() -> Registry:
    return load_registry(FIXTURE_REGISTRY)


@pytest.fixture
def validator(registry: Registry) -> Validator:
    return Validator(registry)
