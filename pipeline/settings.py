"""Run-time settings: one frozen object read from ``EWARN_*`` environment variables.

Created at start-up (never at import time) and passed down; the core itself only
receives plain parameter objects. Unprefixed variables are never read, so a stray
``WEB_PORT`` in the environment cannot reconfigure a worker.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names (contract defaults; all configurable with ``EWARN_TOPIC_<NAME>``)."""

    telemetry: str = "ew.telemetry"
    deadletter: str = "ew.deadletter"
    registry: str = "ew.registry"
    warnings: str = "ew.warnings"
    dispositions: str = "ew.dispositions"
    risk: str = "ew.risk"


@dataclass(frozen=True, slots=True)
class Settings:
    bootstrap: str = DEFAULT_BOOTSTRAP
    topics: Topics = Topics()
    partitions: int = 4
    app_id: str = "ewarn"  # Faust app id = consumer group
    state_dir: str = ".cache/ewarn-state"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9100
    processing_guarantee: str = "at_least_once"
    registry_path: str | None = None
    # When input pauses, a timer lets pending checks run at the current watermark
    # (0 = off); when it stops for longer than idle_advance_s (0 = never), event
    # time is advanced by the wall-clock time since, so a silent province still
    # raises stale alerts and escalations still fire.
    idle_tick_s: float = 1.0
    idle_advance_s: float = 60.0
    # A site partition merges readings from every telemetry partition; its
    # watermark is the slowest source's progress, but never more than this far
    # behind the fastest one (a safety net: a caught-up source never holds it back).
    source_lag_s: float = 3600.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``EWARN_*`` variables, then explicit (CLI) overrides."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "topics":
                continue
            raw = env.get(f"EWARN_{f.name.upper()}")
            if raw is None:
                continue
            default = getattr(cls(), f.name)
            if isinstance(default, bool):
                values[f.name] = raw.lower() in {"1", "true", "yes"}
            elif isinstance(default, int):
                values[f.name] = int(raw)
            elif isinstance(default, float):
                values[f.name] = float(raw)
            else:
                values[f.name] = raw
        topic_values = {
            t.name: env[f"EWARN_TOPIC_{t.name.upper()}"]
            for t in fields(Topics)
            if f"EWARN_TOPIC_{t.name.upper()}" in env
        }
        settings = cls(**values, topics=Topics(**topic_values))
        clean = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **clean) if clean else settings
