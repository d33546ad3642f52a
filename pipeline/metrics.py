"""Prometheus metrics of ewarn: the catalogue, one small facade, and PromQL helpers.

An edge module (``prometheus_client`` is allowed here, not in the core). The Faust
agents and the offline path call the verbs of :class:`Metrics`; they never touch a
collector directly, so names, label sets and cardinality limits live in one place.
``ops/METRICS.md`` documents every series with example PromQL.

Every ``Metrics`` owns its own ``CollectorRegistry``: tests and several apps in
one process never clash, and a worker exports exactly the ewarn series.

Cardinality is bounded on purpose: labels are industry, province, level, kind,
event, reason, tier, never site or sensor ids (unless ``per_site=True``). Free
text labels (province, grade, stage, escalation reason, ...) are capped at
``max_label_values`` distinct values each; later newcomers are counted under
``"other"`` so a bad registry or a bug can never explode the time-series count.

Example::

    m = Metrics()
    m.reading("coal_mine", "Hubei", "accepted")
    m.last_reading("Hubei", 1764316800000)
    start_http_server(m, host="0.0.0.0", port=9100)
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from time import perf_counter
from typing import Any, Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client import start_http_server as _prom_start_http_server

from pipeline.model import EVENT_TYPES, INDUSTRIES, KINDS, LEVELS, AlertEvent
from pipeline.validation import REASON_CODES

Outcome = Literal["accepted", "rejected"]
OUTCOMES: tuple[Outcome, ...] = ("accepted", "rejected")

#: Dead-letter reason codes of the contract; anything else is counted as ``other``.
DEAD_LETTER_REASONS: tuple[str, ...] = REASON_CODES

#: Label value for records that cannot be attributed (e.g. malformed JSON).
UNKNOWN = "unknown"
#: Label value that absorbs values past a label's cap or outside its vocabulary.
OTHER = "other"

#: Event time -> publish latency buckets, seconds (10 ms .. 60 s).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
#: Per-batch processing time buckets, seconds (100 µs .. 10 s).
BATCH_BUCKETS: tuple[float, ...] = (
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0,
)  # fmt: skip

PREFIX = "ewarn_"


class _LabelCap:
    """Admits at most ``limit`` distinct values of one label; the rest become ``other``.

    Thread-safe: the Faust event loop and the HTTP exporter thread may both read.
    """

    __slots__ = ("_lock", "_seen", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: object) -> str:
        text = UNKNOWN if value is None or value == "" else str(value)
        with self._lock:
            if text in self._seen:
                return text
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(text)
            return text


def _vocab(value: object, allowed: tuple[str, ...], fallback: str = OTHER) -> str:
    """Map a value onto a closed vocabulary (bounded by construction)."""
    text = str(value) if value is not None else ""
    return text if text in allowed else fallback


class Metrics:
    """Facade over the ewarn collectors, in a private registry.

    Counters (``reading``, ``dead_letter``, ``alert_event``, ``escalation``) are
    called once per item; ``set_*`` gauges take a full snapshot and zero the label
    sets that disappeared from it (a level with no open alerts reads 0, not its
    stale last value). Methods never raise on odd label values: metrics must not
    take the pipeline down.

    ``per_site=True`` adds a ``site`` label to ``ewarn_readings_total`` (capped at
    ``max_sites`` values): useful on small deployments, costly on large ones.
    """

    def __init__(
        self,
        *,
        per_site: bool = False,
        max_label_values: int = 64,
        max_sites: int = 2000,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.per_site = per_site
        r = self.registry
        self._province = _LabelCap(max_label_values)
        self._grade = _LabelCap(max_label_values)
        self._stage = _LabelCap(max_label_values)
        self._esc_reason = _LabelCap(max_label_values)
        self._topic = _LabelCap(max_label_values)
        self._site = _LabelCap(max_sites)
        self._lock = threading.Lock()
        self._last_ts: dict[str, float] = {}
        self._snapshots: dict[str, set[tuple[str, ...]]] = {}

        reading_labels = ["industry", "province", "outcome"] + (["site"] if per_site else [])
        self.readings_total = Counter(
            "ewarn_readings",
            "Input telemetry records by outcome (accepted reading or dead letter).",
            reading_labels,
            registry=r,
        )
        self.dead_letters_total = Counter(
            "ewarn_dead_letters",
            "Records sent to the dead-letter topic, by contract reason code.",
            ["reason"],
            registry=r,
        )
        self.alert_events_total = Counter(
            "ewarn_alert_events",
            "Alert events published to ew.warnings.",
            ["kind", "level", "event", "industry", "province"],
            registry=r,
        )
        self.escalations_total = Counter(
            "ewarn_escalations",
            "Alert escalations by the tier reached (0 enterprise .. 3 province) and reason.",
            ["tier", "reason"],
            registry=r,
        )
        self.open_alerts = Gauge(
            "ewarn_open_alerts",
            "Alerts currently open (not resolved), by level and province.",
            ["level", "province"],
            registry=r,
        )
        self.hidden_dangers = Gauge(
            "ewarn_hidden_dangers",
            "Hidden dangers on the list (orange/red, not yet closed), by level and province.",
            ["level", "province"],
            registry=r,
        )
        self.site_risk_sites = Gauge(
            "ewarn_site_risk_sites",
            "Number of sites per risk grade and province.",
            ["grade", "province"],
            registry=r,
        )
        self.stale_sensors = Gauge(
            "ewarn_stale_sensors",
            "Sensors with no data for longer than allowed, by province.",
            ["province"],
            registry=r,
        )
        self.detection_latency_seconds = Histogram(
            "ewarn_detection_latency_seconds",
            "Event time of the triggering reading to publication of the alert event.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_processing_seconds = Histogram(
            "ewarn_batch_processing_seconds",
            "Processing time of one batch, by pipeline stage.",
            ["stage"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "ewarn_consumer_lag",
            "Consumer lag in records (highwater - position) per assigned partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.worker_info = Info("ewarn_worker", "Version and id of this worker.", registry=r)
        self.registry_sites = Gauge(
            "ewarn_registry_sites", "Sites in the loaded registry.", registry=r
        )
        self.registry_sensors = Gauge(
            "ewarn_registry_sensors", "Sensors in the loaded registry.", registry=r
        )
        self.kafka_unreachable_total = Counter(
            "ewarn_kafka_unreachable_total",
            "Metadata requests of this worker's Kafka clients that reached no broker.",
            registry=r,
        )
        self.last_reading_timestamp_seconds = Gauge(
            "ewarn_last_reading_timestamp_seconds",
            "Event time (unix seconds) of the newest accepted reading, by province.",
            ["province"],
            registry=r,
        )

    # ------------------------------------------------------------------ counters
    def reading(
        self, industry: str, province: str, outcome: Outcome, site_id: str | None = None
    ) -> None:
        """Count one input record. Unattributable records: industry/province ``"unknown"``.

        ``site_id`` is used only when the instance was built with ``per_site=True``.
        """
        labels = [
            _vocab(industry, (*INDUSTRIES, UNKNOWN), UNKNOWN),
            self._province(province),
            _vocab(outcome, OUTCOMES),
        ]
        if self.per_site:
            labels.append(self._site(site_id))
        self.readings_total.labels(*labels).inc()

    def dead_letter(self, reason: str) -> None:
        """Count one dead letter by its contract reason code (others -> ``other``)."""
        self.dead_letters_total.labels(_vocab(reason, DEAD_LETTER_REASONS)).inc()

    def alert_event(self, event: AlertEvent, industry: str, province: str) -> None:
        """Count one published alert event (a level of ``None`` is labelled ``none``)."""
        self.alert_events_total.labels(
            _vocab(event.kind, KINDS),
            "none" if event.level is None else _vocab(event.level, LEVELS),
            _vocab(event.event, EVENT_TYPES),
            _vocab(industry, (*INDUSTRIES, UNKNOWN), UNKNOWN),
            self._province(province),
        ).inc()

    def escalation(self, tier: int, reason: str) -> None:
        """Count one escalation to ``tier`` (0..3; anything else -> ``other``)."""
        tier_label = str(tier) if isinstance(tier, int) and 0 <= tier <= 3 else OTHER
        self.escalations_total.labels(tier_label, self._esc_reason(reason)).inc()

    # ------------------------------------------------------------ gauge snapshots
    def _snapshot(
        self,
        gauge: Gauge,
        name: str,
        values: Mapping[tuple[str, ...], float],
    ) -> None:
        """Set every label set of ``values``; zero those that vanished since last time."""
        summed: dict[tuple[str, ...], float] = {}
        for labels, value in values.items():
            summed[labels] = summed.get(labels, 0.0) + float(value)
        with self._lock:
            previous = self._snapshots.get(name, set())
            for labels in previous - summed.keys():
                gauge.labels(*labels).set(0)
            for labels, value in summed.items():
                gauge.labels(*labels).set(value)
            self._snapshots[name] = previous | summed.keys()

    def set_open_alerts(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Snapshot of open alerts: ``{(level, province): n}``."""
        self._snapshot(
            self.open_alerts,
            "open_alerts",
            {(_vocab(lv, LEVELS, "none"), self._province(p)): n for (lv, p), n in counts.items()},
        )

    def set_hidden_dangers(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Snapshot of the hidden-danger list: ``{(level, province): n}``."""
        self._snapshot(
            self.hidden_dangers,
            "hidden_dangers",
            {(_vocab(lv, LEVELS, "none"), self._province(p)): n for (lv, p), n in counts.items()},
        )

    def set_site_risk(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Snapshot of the site risk board: ``{(grade, province): number of sites}``."""
        self._snapshot(
            self.site_risk_sites,
            "site_risk",
            {(self._grade(g), self._province(p)): n for (g, p), n in counts.items()},
        )

    def set_stale_sensors(self, counts: Mapping[str, int]) -> None:
        """Snapshot of stale sensors: ``{province: n}``."""
        self._snapshot(
            self.stale_sensors,
            "stale_sensors",
            {(self._province(p),): n for p, n in counts.items()},
        )

    def set_consumer_lag(self, lags: Mapping[tuple[str, int], int]) -> None:
        """Snapshot of lag per assigned partition: ``{(topic, partition): highwater - position}``.

        Partitions missing from the snapshot (revoked in a rebalance) are removed,
        not zeroed: another worker now reports them, and a sum must not count twice.
        """
        current = {(self._topic(t), str(int(p))): max(0, int(n)) for (t, p), n in lags.items()}
        with self._lock:
            previous = self._snapshots.get("consumer_lag", set())
            for labels in previous - current.keys():
                self.consumer_lag.remove(*labels)
            for labels, value in current.items():
                self.consumer_lag.labels(*labels).set(value)
            self._snapshots["consumer_lag"] = set(current)

    # ------------------------------------------------------------------- others
    def set_worker_info(self, version: str, worker_id: str) -> None:
        """Publish ``ewarn_worker_info{version,worker_id} 1``."""
        self.worker_info.info({"version": str(version), "worker_id": str(worker_id)})

    def set_registry_size(self, sites: int, sensors: int) -> None:
        """Sizes of the loaded registry (after every registry update)."""
        self.registry_sites.set(sites)
        self.registry_sensors.set(sensors)

    def kafka_unreachable(self) -> None:
        """A Kafka client of this worker asked for metadata and no broker answered."""
        self.kafka_unreachable_total.inc()

    def last_reading(self, province: str, ts_ms: int) -> None:
        """Record the event time of an accepted reading; the gauge only moves forward.

        Feeds ``EwarnNoTelemetryFromRegion``: late or replayed old readings must
        not make a silent region look alive again.
        """
        label = self._province(province)
        seconds = ts_ms / 1000.0
        with self._lock:
            if seconds <= self._last_ts.get(label, float("-inf")):
                return
            self._last_ts[label] = seconds
            self.last_reading_timestamp_seconds.labels(label).set(seconds)

    def observe_detection_latency(self, seconds: float) -> None:
        """Event time of the triggering reading -> publication, in seconds (>= 0)."""
        self.detection_latency_seconds.observe(max(0.0, seconds))

    def observe_batch(self, stage: str, seconds: float) -> None:
        """Processing time of one batch of ``stage`` (e.g. ``ingest``, ``detect``)."""
        self.batch_processing_seconds.labels(self._stage(stage)).observe(max(0.0, seconds))

    @contextmanager
    def time_batch(self, stage: str) -> Iterator[None]:
        """``with metrics.time_batch("detect"): ...`` observes the block's duration."""
        began = perf_counter()
        try:
            yield
        finally:
            self.observe_batch(stage, perf_counter() - began)


def render(metrics: Metrics) -> bytes:
    """The registry in the Prometheus text exposition format."""
    return generate_latest(metrics.registry)


def start_http_server(metrics: Metrics, port: int, host: str = "127.0.0.1") -> Any:
    """Serve ``/metrics`` on ``host:port`` in a daemon thread; returns (server, thread).

    Binds to loopback by default; containers pass ``EWARN_METRICS_HOST=0.0.0.0``.
    ``port=0`` picks a free port (read it from ``server.server_port``).
    """
    return _prom_start_http_server(port, addr=host, registry=metrics.registry)


# ------------------------------------------------------------------ name helpers
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "gauge": ("",),
    "stateset": ("",),
    "enum": ("",),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "unknown": ("",),
}


def exported_metric_names(metrics: Metrics) -> set[str]:
    """Every series name the registry can expose (``_total``, ``_bucket``, ... included).

    Derived from the metric families and their types, so it is complete even
    before any labelled child exists.
    """
    names: set[str] = set()
    for family in metrics.registry.collect():
        for suffix in _SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


_PROMQL_KEYWORDS = frozenset(
    {
        "and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
        "group_right", "offset", "bool", "inf", "nan", "atan2",
    }
)  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$\w+")
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_IDENT = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(\s*\()?")


def promql_metric_names(expr: str) -> set[str]:
    """Metric names referenced by a PromQL expression (Grafana ``$vars`` tolerated).

    A light lexer, not a parser: strips strings, label matchers, ranges and
    grouping clauses, then keeps identifiers that are neither functions nor
    keywords. Enough to check that dashboards and rules only use exported series.

    >>> sorted(promql_metric_names('sum by (level) (rate(ewarn_alert_events_total{kind="x"}[5m]))'))
    ['ewarn_alert_events_total']
    """
    text = _STRING.sub('""', expr)
    text = _GRAFANA_VAR.sub("1", text)
    text = _BRACES.sub("", text)
    text = _BRACKETS.sub("", text)
    text = _GROUPING.sub(" ", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        ident, call = match.group(1), match.group(2)
        if call or ident.lower() in _PROMQL_KEYWORDS:
            continue
        # Durations like 5m or exponents like 1e-9 never start a token here
        # (lookbehind excludes digits), so what remains is a metric name.
        names.add(ident)
    return names


__all__ = [
    "DEAD_LETTER_REASONS",
    "OTHER",
    "OUTCOMES",
    "PREFIX",
    "UNKNOWN",
    "Metrics",
    "Outcome",
    "exported_metric_names",
    "promql_metric_names",
    "render",
    "start_http_server",
]
