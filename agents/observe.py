"""Metrics for a worker: runtime hooks -> ``pipeline.metrics.Metrics``, plus periodic gauges.

Counters move as records flow (via ``Runtime.notify``); gauges (open alerts,
hidden dangers, site risk, stale sensors, consumer lag) are snapshots taken by a
timer from this worker's own view: each worker reports the alerts it published,
and Prometheus sums across workers. Processing time per stage comes from a
Faust sensor around every stream event (agents handle one event at a time, so
an event is the batch of ``ewarn_batch_processing_seconds``).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import faust
from faust.sensors import Sensor
from faust.types import TP, EventT, StreamT

from agents.app import Runtime
from agents.retry import failure_listeners
from pipeline import __version__
from pipeline.metrics import Metrics, start_http_server
from pipeline.model import AlertEvent, DeadLetter, Reading, Registry
from pipeline.opsview import Board
from pipeline.settings import Settings

log = logging.getLogger("ewarn.metrics")


class WorkerObserver:
    """Turns runtime notifications into metric updates; never raises."""

    def __init__(self, metrics: Metrics, registry: Registry) -> None:
        self.metrics = metrics
        self.registry = registry
        self.board = Board()
        self.site_grades: dict[str, str] = {}
        self.metrics.set_registry_size(len(registry.sites), len(registry.sensors))

    def _where(self, site_id: str | None) -> tuple[str, str]:
        site = self.registry.sites.get(site_id or "")
        if site is None:
            return "unknown", "unknown"
        return site.industry, site.region[0]

    def __call__(self, kind: str, payload: Any) -> None:
        if kind == "reading" and isinstance(payload, Reading):
            industry, province = self._where(payload.site_id)
            self.metrics.reading(industry, province, "accepted")
            self.metrics.last_reading(province, payload.ts)
        elif kind == "dead_letter" and isinstance(payload, DeadLetter):
            self.metrics.reading("unknown", "unknown", "rejected")
            self.metrics.dead_letter(payload.reason)
        elif kind == "alert" and isinstance(payload, AlertEvent):
            industry, province = self._where(payload.site_id)
            self.metrics.alert_event(payload, industry, province)
            if payload.event == "escalated":
                reason = str(payload.evidence.get("reason", "unacknowledged"))
                self.metrics.escalation(payload.tier, reason)
            if payload.event in ("opened", "updated"):
                self.metrics.observe_detection_latency(time.time() - payload.ts / 1000.0)
            self.board.apply(payload.to_dict())
        elif kind == "risk" and isinstance(payload, dict) and payload.get("scope") == "site":
            grade = payload.get("grade")
            self.site_grades[str(payload.get("id"))] = "green" if grade is None else str(grade)
        elif kind == "registry" and isinstance(payload, Registry):
            self.registry = payload
            self.metrics.set_registry_size(len(payload.sites), len(payload.sensors))

    def snapshot(self) -> None:
        """Refresh the gauges from this worker's board and risk view."""
        open_counts: dict[tuple[str, str], int] = {}
        hidden: dict[tuple[str, str], int] = {}
        stale: dict[str, int] = {}
        for alert in self.board.active_alerts():
            province = self._where(alert.site_id)[1]
            key = (alert.level or "none", province)
            open_counts[key] = open_counts.get(key, 0) + 1
            if alert.kind == "stale":
                stale[province] = stale.get(province, 0) + 1
        for alert in self.board.hidden_dangers():
            key = (alert.level or "none", self._where(alert.site_id)[1])
            hidden[key] = hidden.get(key, 0) + 1
        grades: dict[tuple[str, str], int] = {}
        for site_id, grade in self.site_grades.items():
            key = (grade, self._where(site_id)[1])
            grades[key] = grades.get(key, 0) + 1
        self.metrics.set_open_alerts(open_counts)
        self.metrics.set_hidden_dangers(hidden)
        self.metrics.set_site_risk(grades)
        self.metrics.set_stale_sensors(stale)


class StageTimer(Sensor):
    """Observes each stream event's processing time under its pipeline stage.

    Stages are named after the agent's input topic (``ingest``, ``site``,
    ``dispositions``, ``region``), never after a topic name: names carry the
    deployment's app id and would make a new series per deployment.
    """

    def __init__(self, metrics: Metrics, stages: dict[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics
        self.stages = stages

    def on_stream_event_in(self, tp: TP, offset: int, stream: StreamT[Any],
                           event: EventT[Any]) -> dict[str, Any] | None:
        return {"t0": time.perf_counter()}

    def on_stream_event_out(self, tp: TP, offset: int, stream: StreamT[Any], event: EventT[Any],
                            state: dict[str, Any] | None = None) -> None:
        if state is None:
            return
        try:
            stage = self.stages.get(tp.topic, "other")
            self.metrics.observe_batch(stage, time.perf_counter() - state["t0"])
        except Exception:  # metrics must never stop the stream
            log.exception("stage timing failed")


def stage_names(settings: Settings) -> dict[str, str]:
    """Input topic -> stage label of the agent that consumes it (see agents/app.py)."""
    return {
        settings.topics.telemetry: "ingest",
        f"{settings.app_id}-site-events": "site",
        settings.topics.dispositions: "dispositions",
        f"{settings.app_id}-site-risk": "region",
    }


async def consumer_lag(app: faust.App) -> dict[tuple[str, int], int]:
    """Highwater minus position for every partition assigned to this worker."""
    consumer = app.consumer
    lags: dict[tuple[str, int], int] = {}
    for tp in consumer.assignment():
        highwater = consumer.highwater(tp)
        position = await consumer.position(tp)
        if highwater is not None and position is not None:
            lags[(tp.topic, tp.partition)] = max(0, int(highwater) - int(position))
    return lags


def attach_metrics(app: faust.App, rt: Runtime, settings: Settings) -> Metrics | None:
    """Serve /metrics for this worker (port 0 = metrics off) and keep the gauges fresh."""
    if settings.metrics_port == 0:
        return None
    metrics = Metrics()
    metrics.set_worker_info(__version__, f"{settings.app_id}-{uuid.uuid4().hex[:6]}")
    observer = WorkerObserver(metrics, rt.registry)
    rt.hooks.append(observer)
    app.sensors.add(StageTimer(metrics, stage_names(settings)))
    start_http_server(metrics, settings.metrics_port, settings.metrics_host)
    failure_listeners.append(metrics.kafka_unreachable)  # agents/retry.py

    @app.timer(interval=5.0)
    async def refresh_gauges() -> None:
        try:
            observer.snapshot()
            metrics.set_consumer_lag(await consumer_lag(app))
        except Exception:  # a failing gauge must not stop the worker (Faust would)
            log.exception("metrics snapshot failed")

    return metrics
