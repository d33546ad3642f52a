"""The Faust application: topics, tables, timers and agents around the core Engine.

Flow (every arrow is a Kafka topic)::

    ew.telemetry ──ingest──► <app>-site-events (by site_id) ──site──► ew.warnings
         │ rejects                 ▲  dispositions, ticks        └──► <app>-site-risk
         ▼                         │                                    ──region──► ew.risk
    ew.deadletter     ew.dispositions ──dispositions──┘
    ew.registry ──(followed by every worker)──► registry used by ingest and Engine

Readings are repartitioned by **site** (not sensor) so that everything the
lifecycle needs about one site (its sensors' detector state, open alerts,
grouping windows, risk grade) lives in one partition and one Engine call sees it
in order: the offline ``ewarn detect`` does the same per site, hence the same
events.

Delivery is at-least-once with idempotent events (see ``agents/delivery.py``):
alert events are published and acknowledged by the broker *before* the state
that produced them is written to the table changelog, and every stored entry
carries the position of the event that last wrote it, so a worker killed at any
point neither loses an alert nor applies a reading twice; a repeated event has
the same (alert_id, seq) and consumers drop it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.types import EventT

from agents.delivery import EventPosition, SourceMarks, StagedStore
from pipeline.engine import Engine, EngineOutput, EngineParams
from pipeline.model import AlertEvent, DeadLetter, Disposition, Reading, Registry, SourcePosition
from pipeline.settings import Settings
from pipeline.timeutil import to_rfc3339
from pipeline.validation import (
    ValidationParams,
    Validator,
    dead_letter,
    disposition_to_dict,
    parse_disposition,
)

log = logging.getLogger("ewarn.agents")


#: How stale the Kafka clients' topic metadata may get. Faust creates the internal
#: topics (site repartition, table changelog) at start-up and then subscribes; if the
#: broker has not yet published a new topic's partitions when the group is assigned
#: (seen on a freshly started broker, busy creating ``__consumer_offsets``),
#: the assignment leaves that topic out until the next metadata refresh: aiokafka's
#: default is 5 minutes, during which the agent reading that topic sees nothing.
#: One small metadata request per client every 10 s bounds that.
METADATA_MAX_AGE_MS = 10_000


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Runtime:
    """Everything the agents share inside one worker process."""

    settings: Settings
    registry: Registry
    validator: Validator
    marks: SourceMarks
    engine: Engine | None = None
    last_input_wall: float = field(default_factory=time.monotonic)
    ingest_watermark_ms: int | None = None
    ingest_progress: dict[int, int] = field(default_factory=dict)  # source -> latest ts
    ingest_offsets: dict[int, int] = field(default_factory=dict)  # source -> last offset
    ingest_last_wall: dict[int, float] = field(default_factory=dict)  # source -> last record
    last_tick: Any = None
    hooks: list[Any] = field(default_factory=list)  # callables(kind, payload) for metrics

    def notify(self, kind: str, payload: Any) -> None:
        for hook in self.hooks:
            try:
                hook(kind, payload)
            except Exception:  # a metrics hook must never stop the pipeline
                log.exception("metrics hook failed")


def _raw_topic(app: faust.App, name: str, **kwargs: Any) -> faust.TopicT:
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw",
                     value_serializer="raw", **kwargs)


def create_app(
    settings: Settings, registry: Registry, source_count: int = 1
) -> tuple[faust.App, Runtime]:
    """Build the Faust app for ``settings``; the registry is the initial one.

    ``source_count`` is the number of ``ew.telemetry`` partitions: a site partition
    judges event time only once it has heard from every one of them.
    """
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap}",
        store="memory://",
        datadir=settings.state_dir,
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        processing_guarantee=settings.processing_guarantee,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_tables_enabled=False,  # table contents are operational data, not for the web
        web_graph_enabled=False,
        env={},  # settings come from EWARN_* only (pipeline.settings), never bare env vars
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        producer_acks=-1,
        # A few ms of linger turn one socket write per message into batches: every
        # reading produces a repartitioned record and a changelog record.
        producer_linger=0.005,
        consumer_metadata_max_age_ms=METADATA_MAX_AGE_MS,
        producer_metadata_max_age_ms=METADATA_MAX_AGE_MS,
        logging_config=None,
    )
    rt = Runtime(settings, registry, Validator(registry, ValidationParams()),
                 SourceMarks(int(settings.source_lag_s * 1000), sources=source_count))
    topics = settings.topics
    telemetry = _raw_topic(app, topics.telemetry)
    dispositions = _raw_topic(app, topics.dispositions)
    deadletter = _raw_topic(app, topics.deadletter)
    warnings = _raw_topic(app, topics.warnings)
    risk = _raw_topic(app, topics.risk)
    # Internal topics are named after the app id, so deployments never share them.
    site_events = _raw_topic(app, f"{settings.app_id}-site-events",
                             partitions=settings.partitions, internal=True)
    site_risk = _raw_topic(app, f"{settings.app_id}-site-risk", partitions=1, internal=True)
    # One table for all per-site and per-sensor state: one changelog topic, so the
    # writes of one event land in one changelog partition in order (agents/delivery.py).
    state = app.Table("ewarn-state", default=None, partitions=settings.partitions)

    async def send_dead_letter(dl: DeadLetter, original_key: bytes | None) -> None:
        # Keyed by the original key bytes, as the contract says (not its text form).
        await deadletter.send(key=original_key, value=json.dumps(dl.to_dict()).encode())
        rt.notify("dead_letter", dl)

    # --- ingest: validate and repartition by site ------------------------------------
    @app.agent(telemetry)
    async def ingest(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            msg = event.message
            rt.last_input_wall = time.monotonic()
            result = rt.validator.validate(
                msg.value or b"", msg.key, SourcePosition(msg.topic, msg.partition, msg.offset),
                now_ms(), rt.ingest_watermark_ms,
            )
            if isinstance(result, DeadLetter):
                await send_dead_letter(result, msg.key)
            else:
                # "s": the source partition, so the site agent can hold its watermark
                # at the slowest source (readings of one site come from all of them).
                body = {"t": "r", "r": result.to_dict(), "s": msg.partition, "o": msg.offset}
                await site_events.send(key=result.site_id.encode(),
                                       value=json.dumps(body).encode())
                # Advance the watermark only once the reading is queued: a tick must
                # never overtake a reading it claims to be later than.
                if result.ts > rt.ingest_progress.get(msg.partition, result.ts - 1):
                    rt.ingest_progress[msg.partition] = result.ts
                if rt.ingest_watermark_ms is None or result.ts > rt.ingest_watermark_ms:
                    rt.ingest_watermark_ms = result.ts
                rt.notify("reading", result)
            rt.ingest_offsets[msg.partition] = msg.offset
            rt.ingest_last_wall[msg.partition] = time.monotonic()
            yield None

    # --- dispositions: validate, route to the alert's site -----------------------------
    @app.agent(dispositions)
    async def route_dispositions(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            msg = event.message
            parsed = parse_disposition(msg.value or b"", now_ms())
            site_id = None if isinstance(parsed, str) else rt_engine(rt).site_of_alert(
                parsed.alert_id)
            if isinstance(parsed, str) or site_id is None:
                reason, detail = (
                    (str(parsed), getattr(parsed, "detail", "invalid disposition"))
                    if isinstance(parsed, str)
                    else ("unknown_alert", f"no site known for alert {parsed.alert_id!r}")
                )
                source = SourcePosition(msg.topic, msg.partition, msg.offset)
                await send_dead_letter(
                    dead_letter(msg.value or b"", msg.key, source, now_ms(), reason, detail),
                    msg.key,
                )
            else:
                body = {"t": "d", "d": _disposition_dict(parsed),
                        "src": [msg.topic, msg.partition, msg.offset]}
                await site_events.send(key=site_id.encode(), value=json.dumps(body).encode())
            yield None

    # --- the site agent: Engine over the site's readings, dispositions and ticks -------
    @app.agent(site_events)
    async def site(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            try:
                await handle_site_event(event)
            except Exception:
                # One bad internal event must not stop the worker (Faust would crash).
                log.exception("site event failed at %s:%s", event.message.partition,
                              event.message.offset)
            yield None

    def load_marks(partition: int) -> None:
        """A partition new to this worker continues from its stored source progress."""
        if not rt.marks.known(partition):
            entry = state.get(f"marks:{partition}")
            rt.marks.restore(partition, entry.get("v") if isinstance(entry, dict) else None)

    def save_marks(store: StagedStore, partition: int) -> None:
        snapshot = rt.marks.snapshot_due(partition)
        if snapshot is not None:
            store.view("marks:")[str(partition)] = snapshot

    async def handle_site_event(event: EventT[bytes]) -> None:
        msg = event.message
        pos = EventPosition(msg.partition, msg.offset)
        body = json.loads(msg.value or b"{}")
        engine = rt_engine(rt)
        store = StagedStore(state, pos)
        engine.use_stores(store.view("sensor:"), store.view("site:"))
        kind = body.get("t")
        origin: SourcePosition | None = None  # where a disposition was read
        if kind == "r":
            reading = Reading.from_dict(body["r"])
            rt.last_input_wall = time.monotonic()
            load_marks(msg.partition)
            watermark = rt.marks.observe(msg.partition, body.get("s"), reading.ts)
            # Skip what this sensor's state already contains: a re-consumed site
            # event after a crash, or a reading the ingest forwarded twice (a
            # telemetry partition re-read after a rebalance).
            source = (body.get("s"), body.get("o"))
            sensor_key = f"sensor:{reading.sensor_id}"
            if store.already_applied(sensor_key) or store.source_applied(sensor_key, *source):
                return
            store.source = source
            # No watermark yet: event time must not move (0 never makes anything due).
            out = engine.on_reading(reading, 0 if watermark is None else watermark)
            save_marks(store, msg.partition)
        elif kind == "d":
            d = body["d"]
            load_marks(msg.partition)
            out = engine.on_disposition(Disposition(
                alert_id=d["alert_id"], action=d["action"], by=d["by"], at=int(d["at"]),
                note=d.get("note")), rt.marks.watermark(msg.partition) or 0)
            if body.get("src"):
                origin = SourcePosition(*body["src"])
        elif kind == "w":
            load_marks(msg.partition)
            progress = {int(k): int(v) for k, v in body.get("m", {}).items()}
            ticked = rt.marks.tick(msg.partition, progress, int(body.get("adv", 0)))
            save_marks(store, msg.partition)
            if ticked is None:
                return
            out = engine.on_watermark(ticked)
        else:
            return
        await publish(out, origin)
        store.flush()  # only after the outputs were acknowledged by the broker

    async def publish(out: EngineOutput, source: SourcePosition | None = None) -> None:
        futures = []
        sent_ms = now_ms()
        for alert in out.alerts:
            alert_out = AlertEvent.to_dict(alert)
            alert_out["emitted_at"] = to_rfc3339(sent_ms)
            futures.append(await warnings.send(key=alert.alert_id.encode(),
                                               value=json.dumps(alert_out).encode()))
            rt.notify("alert", alert)
        for item in out.risks:
            futures.append(await site_risk.send(key=str(item.get("id")).encode(),
                                                value=json.dumps(item).encode()))
        for rejected, reason in out.rejected:
            # Never applied silently: the operator's message goes to the dead letters
            # with the lifecycle's reason (illegal_transition, not_resolved, ...).
            raw = json.dumps(disposition_to_dict(rejected)).encode()
            key = rejected.alert_id.encode()
            dl = dead_letter(raw, key, source or SourcePosition(settings.topics.dispositions, 0, 0),
                             now_ms(), reason,
                             f"disposition rejected by the alert lifecycle: {reason}")
            futures.append(await deadletter.send(key=key, value=json.dumps(dl.to_dict()).encode()))
            rt.notify("dead_letter", dl)
            rt.notify("disposition_rejected", (rejected, reason))
        if futures:
            await asyncio.gather(*futures)

    # --- region roll-up (single partition: sees every site) ---------------------------
    @app.agent(site_risk)
    async def region(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        from pipeline.alerts.risk import RegionRollup

        rollup = RegionRollup()
        async for value in stream:
            site_event = json.loads(value)
            await risk.send(key=str(site_event.get("id")).encode(), value=value)
            for region_event in rollup.update(site_event):
                await risk.send(key=str(region_event.get("id")).encode(),
                                value=json.dumps(region_event).encode())
                rt.notify("risk", region_event)
            rt.notify("risk", site_event)
            yield None

    # --- source progress heartbeat; when input stops, event time must still move ---
    async def idle_tick() -> None:
        try:
            # A heartbeat, not only when idle: every site partition must hear from
            # every source, including sources none of its sites' sensors use.
            idle_s = time.monotonic() - rt.last_input_wall
            # Only sources this worker's ingest still owns: their readings were sent
            # before this tick, so "delivered up to t" is true when it arrives.
            owned = {tp for tp in app.consumer.assignment()
                     if tp.topic == settings.topics.telemetry}
            progress = {tp.partition: rt.ingest_progress[tp.partition] for tp in owned
                        if tp.partition in rt.ingest_progress}
            # A source with nothing pending that has stayed quiet for a while has
            # delivered everything it has: it must not hold event time back (a
            # partition whose sensors all went quiet). "A while", because during a
            # replay or backlog a partition is often caught up for a moment.
            latest = max(progress.values(), default=None)
            quiet_s = max(30.0, 3 * settings.idle_tick_s)
            now = time.monotonic()
            for tp in owned:
                # first sight counts as activity: quiet means quiet *since we looked*
                last_seen = rt.ingest_last_wall.setdefault(tp.partition, now)
                if latest is None or now - last_seen < quiet_s:
                    continue
                highwater = app.consumer.highwater(tp)
                position = await app.consumer.position(tp)
                done = rt.ingest_offsets.get(tp.partition)
                fetched_all = highwater is not None and position is not None \
                    and position >= highwater
                if fetched_all and (done is None or done + 1 >= (highwater or 0)):
                    progress[tp.partition] = max(progress.get(tp.partition, latest), latest)
            advance = 0
            if settings.idle_advance_s and idle_s > settings.idle_advance_s:
                advance = int((idle_s - settings.idle_advance_s) * 1000)
            tick_key = (tuple(sorted(progress.items())), advance)
            if tick_key == rt.last_tick:
                return
            rt.last_tick = tick_key
            body = json.dumps({"t": "w", "m": {str(p): ts for p, ts in progress.items()},
                               "adv": advance}).encode()
            for partition in range(settings.partitions):
                await site_events.send(key=b"__tick__", value=body, partition=partition)
        except Exception:
            log.exception("idle tick failed")

    if settings.idle_tick_s > 0:
        app.timer(interval=settings.idle_tick_s)(idle_tick)

    def on_assigned(_sender: Any, *_args: Any, **_kw: Any) -> None:
        # Entries may have been changed by another worker meanwhile: rescan them.
        if rt.engine is not None:
            rt.engine.reset_hints()
            rt.engine.reset_event_time()
        rt.marks.forget()
        # Progress claims are only sound for what this ingest forwarded itself
        # during its current assignment.
        rt.ingest_progress.clear()
        rt.ingest_offsets.clear()
        rt.ingest_last_wall.clear()

    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]

    @app.task
    async def follow_registry() -> None:
        from agents.registry_follower import follow

        await follow(settings, rt, on_update=lambda reg: _set_registry(rt, reg))

    return app, rt


def rt_engine(rt: Runtime) -> Engine:
    if rt.engine is None:
        rt.engine = Engine(rt.registry, EngineParams())
    return rt.engine


def _set_registry(rt: Runtime, registry: Registry) -> None:
    rt.registry = registry
    rt.validator.registry = registry
    if rt.engine is not None:
        rt.engine.registry = registry
    rt.notify("registry", registry)


def _disposition_dict(d: Disposition) -> dict[str, Any]:
    return {"alert_id": d.alert_id, "action": d.action, "by": d.by, "at": d.at, "note": d.note}
