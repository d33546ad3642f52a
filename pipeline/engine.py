"""The processing engine: validation's output in, alert and risk events out.

One code path for ``ewarn detect`` and the Faust agents. All state lives in two
injected mappings with JSON-safe values, so the streaming side passes Faust tables:

- ``sensor_store[sensor_id]`` -> the detector state (``SensorState.to_dict()``);
- ``site_store[site_id]`` -> the site's alert book (``pipeline.alerts.book``).

Entries are written back only when they changed (a table write is a changelog
message). Timer-style events (stale, escalations, deadlines) carry their deadline as
``ts``, so the events do not depend on when a watermark happened to be observed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.alerts.book import UNKNOWN_ALERT, BookContext, SiteBook
from pipeline.alerts.hidden import HiddenDangerList
from pipeline.alerts.params import LifecycleParams, Silence
from pipeline.alerts.risk import RegionRollup
from pipeline.detect import core as _core
from pipeline.detect import kernel as _kernel
from pipeline.detect.params import DetectorParams
from pipeline.findings import Finding
from pipeline.model import AlertEvent, Disposition, Reading, Registry, Sensor


def _stale_due(state: Any, sensor: Sensor, params: DetectorParams) -> int | None:
    """When ``check_stale`` would next fire for this state (``None``: already stale/new).

    Evaluated on a copy with the detector's own rule, so the engine can skip sensors
    that cannot be due instead of calling ``check_stale`` for every sensor every check.
    """
    v = list(state.v)
    fire, due = _kernel.stale_check(
        v, _core.sensor_config(sensor), math.inf, params, _kernel.ScalarOps
    )
    return int(due) if fire else None


@dataclass(frozen=True, slots=True)
class Detector:
    """The detection functions the engine calls (injectable for tests)."""

    new_state: Callable[[Sensor, DetectorParams], Any]
    step: Callable[[Any, Reading, Sensor, DetectorParams], tuple[Any, list[Finding]]]
    check_stale: Callable[[Any, Sensor, int, DetectorParams], tuple[Any, list[Finding]]]
    from_dict: Callable[[dict[str, Any]], Any]
    stale_due: Callable[[Any, Sensor, DetectorParams], int | None]


REAL_DETECTOR = Detector(
    new_state=_core.new_state,
    step=_core.step,
    check_stale=_core.check_stale,
    from_dict=_core.SensorState.from_dict,
    stale_due=_stale_due,
)


def _due_of(site_data: dict[str, Any] | None) -> int | None:
    due = None if site_data is None else site_data.get("due")
    return None if due is None else int(due)


@dataclass(frozen=True, slots=True)
class EngineParams:
    detector: DetectorParams = field(default_factory=DetectorParams)
    lifecycle: LifecycleParams = field(default_factory=LifecycleParams)
    check_interval_ms: int = 5000  # how often (event time) readings trigger on_watermark


@dataclass(slots=True)
class EngineOutput:
    """What one call produced: alert events, risk events and rejected dispositions."""

    alerts: list[AlertEvent] = field(default_factory=list)
    risks: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[tuple[Disposition, str]] = field(default_factory=list)

    def extend(self, other: EngineOutput) -> None:
        self.alerts.extend(other.alerts)
        self.risks.extend(other.risks)
        self.rejected.extend(other.rejected)


class Engine:
    """Detection + alert lifecycle over injected stores.

    >>> engine = Engine(registry)                      # doctest: +SKIP
    >>> out = engine.on_reading(reading)               # doctest: +SKIP
    >>> out.alerts, out.risks                          # doctest: +SKIP

    ``region_rollup=None`` is the streaming shape (site risk events are returned for a
    separate single-partition agent); ``ewarn detect`` passes a ``RegionRollup`` and
    gets region events appended after each site event.
    """

    def __init__(
        self,
        registry: Registry,
        params: EngineParams | None = None,
        sensor_store: MutableMapping[str, dict[str, Any]] | None = None,
        site_store: MutableMapping[str, dict[str, Any]] | None = None,
        region_rollup: RegionRollup | None = None,
        silences: Sequence[Silence] = (),
        detector: Detector = REAL_DETECTOR,
    ) -> None:
        self.registry = registry  # replaceable at run time
        self.params = params if params is not None else EngineParams()
        self.sensor_store: MutableMapping[str, dict[str, Any]] = (
            sensor_store if sensor_store is not None else {}
        )
        self.site_store: MutableMapping[str, dict[str, Any]] = (
            site_store if site_store is not None else {}
        )
        self.region_rollup = region_rollup
        self.silences: list[Silence] = list(silences)
        self.detector = detector
        # Event time is tracked per store scope: offline there is one scope (None);
        # a streaming worker has one per partition, because partitions progress
        # independently and one partition's clock must not judge another's sensors.
        self._watermarks: dict[Any, int] = {}
        # In-memory hints only (never affect output): next stale deadline per sensor
        # and next lifecycle deadline per site, so checks skip what is not due.
        self._stale_due: dict[str, int | None] = {}
        self._site_due: dict[str, int | None] = {}
        self._scanned: set[Any] = set()

    # ---------------------------------------------------------------- inputs
    def use_stores(
        self,
        sensor_store: MutableMapping[str, dict[str, Any]],
        site_store: MutableMapping[str, dict[str, Any]],
    ) -> None:
        """Swap in the stores for the next calls (streaming: staged views of the tables).

        Output never depends on in-memory hints, so swapping is always safe.
        """
        self.sensor_store = sensor_store
        self.site_store = site_store

    def reset_hints(self) -> None:
        """Forget the in-memory hints (streaming: after a rebalance moved partitions)."""
        self._stale_due.clear()
        self._site_due.clear()
        self._scanned.clear()

    def reset_event_time(self) -> None:
        """Forget every scope's event time (streaming: after a rebalance).

        Why: a partition that comes back to this worker resumes from its committed
        offset with the state another worker stored; the clock this engine kept from
        an earlier ownership may be ahead of that state, and deadlines (escalations,
        stale checks) would fire before the readings that precede them. The caller's
        watermark (restored source progress) re-establishes it.
        """
        self._watermarks.clear()

    @property
    def scope(self) -> Any:
        """The stores' scope (a partition in streaming, ``None`` offline)."""
        return getattr(self.sensor_store, "scope", None)

    @property
    def watermark_ms(self) -> int | None:
        """Max event time seen in the current scope (readings and watermark calls)."""
        return self._watermarks.get(self.scope)

    @watermark_ms.setter
    def watermark_ms(self, value: int) -> None:
        self._watermarks[self.scope] = value

    def _owns(self, store: MutableMapping[str, dict[str, Any]], key: str) -> bool:
        owns = getattr(store, "owns", None)
        return bool(owns(key)) if owns is not None else key in store

    def add_silence(self, silence: Silence) -> None:
        self.silences.append(silence)

    @property
    def hidden_dangers(self) -> HiddenDangerList:
        return HiddenDangerList(self.site_store, self.registry)

    def on_reading(self, reading: Reading, watermark_ms: int | None = None) -> EngineOutput:
        """Detect on one accepted reading, run the lifecycle, advance the watermark.

        ``watermark_ms`` is the caller's event-time watermark when it knows better
        than "the latest reading so far" (streaming merges several source
        partitions and passes the slowest one's progress); offline leaves it out.
        """
        out = EngineOutput()
        sensor = self.registry.sensors.get(reading.sensor_id)
        if sensor is None:  # validation rejects these; a registry swap may race it
            return out
        previous = self.watermark_ms
        candidate = reading.ts if watermark_ms is None else watermark_ms
        current = candidate if previous is None else max(previous, candidate)
        self.watermark_ms = current
        det, dp = self.detector, self.params.detector
        state = self._load_sensor(sensor)
        # A gap longer than allowed is reported as a stale episode even when no
        # watermark check happened inside it: same events however often we check.
        state, findings = det.check_stale(state, sensor, reading.ts, dp)
        state, more = det.step(state, reading, sensor, dp)
        findings.extend(more)
        self.sensor_store[sensor.sensor_id] = state.to_dict()
        self._stale_due[sensor.sensor_id] = det.stale_due(state, sensor, dp)
        if findings:
            book = self._book(sensor.site_id)
            for f in findings:
                book.apply_finding(f, sensor.metric, current)
            self._flush(book, out)
        interval = self.params.check_interval_ms
        if previous is None or current // interval > previous // interval:
            out.extend(self.on_watermark(current))
        return out

    def on_disposition(self, d: Disposition, watermark_ms: int | None = None) -> EngineOutput:
        """Apply an operator action; rejected ones come back in ``rejected``.

        Offline, dispositions are merged into the input by their ``at``, which is then
        event time. Streaming passes its watermark: an action's wall-clock ``at`` may be
        ahead of the readings still on their way, and only the alert's own timers may
        fire up to it.
        """
        out = EngineOutput()
        site_id = self.site_of_alert(d.alert_id)
        if site_id is None or site_id not in self.site_store:
            out.rejected.append((d, UNKNOWN_ALERT))
            return out
        book = self._book(site_id)
        horizon = None
        if watermark_ms is not None:
            horizon = max(watermark_ms, self.watermark_ms or watermark_ms)
        reason = book.apply_disposition(d, horizon)
        self._flush(book, out)
        if reason is not None:
            out.rejected.append((d, reason))
        return out

    def on_watermark(self, watermark_ms: int) -> EngineOutput:
        """Stale checks and site deadlines due strictly before ``watermark_ms``.

        Idempotent; cheap when nothing is due (in-memory stale hints and each site's
        stored ``due``). Streaming calls it from a timer when input stops.
        """
        out = EngineOutput()
        if self.watermark_ms is None or watermark_ms > self.watermark_ms:
            self.watermark_ms = watermark_ms
        det, dp = self.detector, self.params.detector
        self._scan_once()
        by_site: dict[str, list[tuple[Finding, str]]] = {}
        for sid, due in list(self._stale_due.items()):
            if due is None or due >= watermark_ms or not self._owns(self.sensor_store, sid):
                continue
            sensor = self.registry.sensors.get(sid)
            if sensor is None:
                continue
            state, findings = det.check_stale(self._load_sensor(sensor), sensor, watermark_ms, dp)
            self._stale_due[sid] = det.stale_due(state, sensor, dp)
            if findings:
                self.sensor_store[sid] = state.to_dict()
                by_site.setdefault(sensor.site_id, []).extend((f, sensor.metric) for f in findings)
        for site_id in sorted(set(by_site) | self._due_sites(watermark_ms)):
            book = self._book(site_id)
            for f, metric in sorted(
                by_site.get(site_id, []), key=lambda x: (x[0].ts, x[0].sensor_id)
            ):
                book.apply_finding(f, metric, watermark_ms)
            book.fire_due(watermark_ms)
            self._flush(book, out)
        return out

    def site_of_alert(self, alert_id: str) -> str | None:
        """The site owning an alert, from the alert id's sensor prefix and the registry."""
        parts = alert_id.rsplit(":", 2)
        if len(parts) != 3:
            return None
        sensor = self.registry.sensors.get(parts[0])
        if sensor is not None:
            return sensor.site_id
        return parts[0] if parts[0] in self.registry.sites else None

    # --------------------------------------------------------------- helpers
    def _scan_once(self) -> None:
        """Fill the hints from the stores once per scope (a recovered or new partition)."""
        if self.scope in self._scanned:
            return
        self._scanned.add(self.scope)
        det, dp = self.detector, self.params.detector
        for sid in list(self.sensor_store):
            if sid not in self._stale_due:
                sensor = self.registry.sensors.get(sid)
                self._stale_due[sid] = (
                    det.stale_due(self._load_sensor(sensor), sensor, dp) if sensor else None
                )
        for site_id, data in list(self.site_store.items()):
            self._site_due[site_id] = _due_of(data)

    def _due_sites(self, watermark_ms: int) -> set[str]:
        return {
            site_id
            for site_id, due in self._site_due.items()
            if due is not None and due < watermark_ms and self._owns(self.site_store, site_id)
        }

    def _load_sensor(self, sensor: Sensor) -> Any:
        raw = self.sensor_store.get(sensor.sensor_id)
        if raw is None:
            return self.detector.new_state(sensor, self.params.detector)
        return self.detector.from_dict(raw)

    def _book(self, site_id: str) -> SiteBook:
        ctx = BookContext(self.registry, self.params.lifecycle, tuple(self.silences))
        return SiteBook(site_id, self.site_store.get(site_id), ctx)

    def _flush(self, book: SiteBook, out: EngineOutput) -> None:
        out.alerts.extend(book.events)
        for event in book.risks:
            out.risks.append(event)
            if self.region_rollup is not None:
                out.risks.extend(self.region_rollup.update(event))
        if book.dirty:
            self.site_store[book.site_id] = book.d
        self._site_due[book.site_id] = _due_of(book.d)
