"""Broker tooling (edge module): topics, registry publishing, record and replay.

Synchronous kafka-python clients: these are batch tools for operators, tests and
benchmarks; the streaming workers use Faust/aiokafka in ``agents/``.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from pipeline.model import Registry
from pipeline.settings import Settings
from pipeline.timeutil import parse_rfc3339


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every external topic with its partitions and configs (the contract's table)."""
    t, p = settings.topics, settings.partitions
    week = str(7 * 24 * 3600 * 1000)
    return [
        TopicSpec(t.telemetry, p, {"retention.ms": week}),
        TopicSpec(t.deadletter, p, {"retention.ms": str(30 * 24 * 3600 * 1000)}),
        # The registry is state, not history: compaction keeps the latest per key.
        TopicSpec(t.registry, 1, {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}),
        TopicSpec(t.warnings, p, {"retention.ms": str(90 * 24 * 3600 * 1000)}),
        TopicSpec(t.dispositions, p, {"retention.ms": str(90 * 24 * 3600 * 1000)}),
        TopicSpec(t.risk, 1, {"retention.ms": week}),
    ]


def create_topics(bootstrap: str, specs: Iterable[TopicSpec]) -> dict[str, str]:
    """Create missing topics; existing ones are left alone. Returns name -> created|exists."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ewarn-topics")
    try:
        existing = set(admin.list_topics())
        result: dict[str, str] = {}
        for spec in specs:
            if spec.name in existing:
                result[spec.name] = "exists"
                continue
            try:
                admin.create_topics(
                    [NewTopic(spec.name, spec.partitions, 1, topic_configs=spec.configs)]
                )
                result[spec.name] = "created"
            except TopicAlreadyExistsError:
                result[spec.name] = "exists"
        _wait_topics(admin, set(result))
        return result
    finally:
        admin.close()


def _wait_topics(admin: KafkaAdminClient, names: set[str], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not names <= set(admin.list_topics()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics not visible: {sorted(names - set(admin.list_topics()))}")
        time.sleep(0.05)


def partition_count(bootstrap: str, topic: str) -> int:
    """Number of partitions of an existing topic."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            raise ValueError(f"topic {topic!r} does not exist")
        return len(parts)
    finally:
        consumer.close()


def producer(bootstrap: str, **kwargs: Any) -> KafkaProducer:
    opts: dict[str, Any] = {"linger_ms": 10, "acks": "all", "batch_size": 256 * 1024}
    opts.update(kwargs)
    return KafkaProducer(bootstrap_servers=bootstrap, **opts)


# --- registry -------------------------------------------------------------------


def publish_registry(bootstrap: str, topic: str, registry: Registry) -> int:
    """Write every site and sensor record to the compacted registry topic."""
    from pipeline.registry import registry_to_records

    records = registry_to_records(registry)
    prod = producer(bootstrap)
    try:
        for key, value in records:
            prod.send(topic, key=key.encode(), value=json.dumps(value).encode())
        prod.flush()
    finally:
        prod.close()
    return len(records)


def read_registry(bootstrap: str, topic: str, timeout_s: float = 30.0) -> Registry:
    """Rebuild the registry from the compacted topic, reading up to its end offsets."""
    from pipeline.registry import apply_registry_record

    registry = Registry()
    for key, value in read_to_end(bootstrap, topic, timeout_s):
        record = None if value is None else json.loads(value)
        registry = apply_registry_record(registry, record, (key or b"").decode())
    return registry


def read_to_end(
    bootstrap: str, topic: str, timeout_s: float = 30.0
) -> Iterator[tuple[bytes | None, bytes | None]]:
    """Yield (key, value) of every record currently in ``topic``, then stop."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
        auto_offset_reset="earliest", consumer_timeout_ms=int(timeout_s * 1000),
    )
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        remaining = {tp for tp in tps if end[tp] > 0}
        deadline = time.monotonic() + timeout_s
        while remaining and time.monotonic() < deadline:
            for tp, msgs in consumer.poll(timeout_ms=500).items():
                for msg in msgs:
                    yield msg.key, msg.value
                if consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        if remaining:
            raise TimeoutError(f"could not read {topic} to its end within {timeout_s}s")
    finally:
        consumer.close()


# --- record / replay ------------------------------------------------------------


def _encode_bytes(data: bytes | None, name: str, out: dict[str, Any]) -> None:
    if data is None:
        out[name] = None
        return
    try:
        out[name] = data.decode("utf-8")
    except UnicodeDecodeError:
        out[name] = base64.b64encode(data).decode("ascii")
        out[f"{name}_encoding"] = "base64"


def _decode_bytes(envelope: dict[str, Any], name: str) -> bytes | None:
    value = envelope.get(name)
    if value is None:
        return None
    if envelope.get(f"{name}_encoding") == "base64":
        return base64.b64decode(value)
    return str(value).encode("utf-8")


def envelope_of(msg: Any) -> dict[str, Any]:
    """A consumed record as one JSON-safe dict (the ``ewarn record`` line format)."""
    out: dict[str, Any] = {
        "topic": msg.topic,
        "partition": msg.partition,
        "offset": msg.offset,
        "timestamp": msg.timestamp,
    }
    _encode_bytes(msg.key, "key", out)
    _encode_bytes(msg.value, "value", out)
    out["headers"] = [
        [k, base64.b64encode(v).decode("ascii") if v is not None else None]
        for k, v in (msg.headers or [])
    ]
    return out


def record(
    bootstrap: str,
    topic: str,
    out: BinaryIO,
    idle_timeout_s: float = 5.0,
    max_records: int | None = None,
    follow: bool = False,
) -> int:
    """Copy a topic to JSON lines from its beginning; stops at its end unless ``follow``."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
        auto_offset_reset="earliest",
    )
    count = 0
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            raise ValueError(f"topic {topic!r} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        last_data = time.monotonic()
        while max_records is None or count < max_records:
            batch = consumer.poll(timeout_ms=200)
            for msgs in batch.values():
                for msg in msgs:
                    out.write(json.dumps(envelope_of(msg)).encode() + b"\n")
                    count += 1
                    last_data = time.monotonic()
            at_end = all(consumer.position(tp) >= end[tp] for tp in tps)
            if not follow and at_end:
                break
            if follow and time.monotonic() - last_data > idle_timeout_s:
                break
        out.flush()
        return count
    finally:
        consumer.close()


@dataclass(frozen=True, slots=True)
class ReplayItem:
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None  # event time: drives pacing and time-range selection
    partition: int | None
    headers: list[tuple[str, bytes]]
    # Only recorded envelopes keep their Kafka timestamp; plain telemetry gets the
    # producer's clock, so old event times never fall under retention on arrival.
    keep_timestamp: bool = False


def _event_time_of(value: Any) -> int | None:
    ts = value.get("ts") if isinstance(value, dict) else None
    if isinstance(ts, int) and not isinstance(ts, bool):
        return ts
    if isinstance(ts, str):
        try:
            return parse_rfc3339(ts)
        except ValueError:
            return None
    return None


def _is_envelope(obj: Any) -> bool:
    return isinstance(obj, dict) and {"key", "value", "timestamp", "partition"} <= obj.keys()


def replay_items(lines: Iterable[bytes]) -> Iterator[ReplayItem]:
    """Parse a replay file: ``ewarn record`` envelopes, or plain telemetry values.

    Plain lines are sent byte-for-byte (bad ones too: that is how the dead-letter
    path is exercised) keyed by their ``sensor_id`` when one can be read.
    """
    for raw in lines:
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if _is_envelope(obj):
            headers = [
                (k, base64.b64decode(v) if v is not None else b"")
                for k, v in obj.get("headers") or []
            ]
            yield ReplayItem(
                _decode_bytes(obj, "key"), _decode_bytes(obj, "value"),
                obj.get("timestamp"), obj.get("partition"), headers, keep_timestamp=True,
            )
            continue
        key = obj.get("sensor_id") if isinstance(obj, dict) else None
        yield ReplayItem(
            key.encode() if isinstance(key, str) else None, line, _event_time_of(obj), None, []
        )


def replay(
    bootstrap: str,
    items: Iterable[ReplayItem],
    topic: str,
    speed: float | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    keep_partition: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Produce items to ``topic``; ``speed`` None = as fast as possible, 1 = original pace."""
    prod = producer(bootstrap)
    count = 0
    first_ts: int | None = None
    t0 = time.monotonic()
    try:
        for item in items:
            ts = item.timestamp_ms
            if ts is not None and (
                (start_ms is not None and ts < start_ms) or (end_ms is not None and ts >= end_ms)
            ):
                continue
            if speed and ts is not None:
                first_ts = ts if first_ts is None else first_ts
                due = (ts - first_ts) / 1000.0 / speed
                delay = due - (time.monotonic() - t0)
                if delay > 0:
                    prod.flush()
                    sleep(delay)
            prod.send(
                topic, key=item.key, value=item.value, headers=item.headers or None,
                partition=item.partition if keep_partition else None,
                timestamp_ms=item.timestamp_ms if item.keep_timestamp else None,
            )
            count += 1
        prod.flush()
    finally:
        prod.close()
    return count


def produce_paced(
    records: Iterable[dict[str, Any]], topic: str, bootstrap: str, speed: float | None = None
) -> int:
    """Produce telemetry dicts keyed by sensor_id, paced by event time (simulator output)."""
    items = (
        ReplayItem(
            str(r["sensor_id"]).encode(), json.dumps(r).encode(), _event_time_of(r), None, []
        )
        for r in records
    )
    return replay(bootstrap, items, topic, speed=speed)


def open_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        yield from fh
