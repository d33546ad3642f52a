"""What detectors say about a sensor: the vocabulary between detection and lifecycle.

Detectors are edge-triggered: they emit a ``Finding`` when a condition starts
(``active=True``), when its level or evidence changes materially (``active=True``
again), and when it clears (``active=False``, after hysteresis / off-delay). The
alert lifecycle turns those edges into ``opened`` / ``updated`` / ``resolved``
events; it never re-derives a condition from raw values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.model import Kind, Level


@dataclass(frozen=True, slots=True)
class Finding:
    sensor_id: str
    kind: Kind
    active: bool
    ts: int  # event time (epoch ms) at which the edge happened
    level: Level | None = None
    value: float | None = None
    threshold: float | None = None  # the limit crossed / to be crossed
    score: float | None = None  # anomaly score in [0, 1]
    eta_s: float | None = None  # forecast: seconds until the crossing
    evidence: dict[str, Any] = field(default_factory=dict)
