"""End-to-end benchmark on a real local broker: raw consume vs the ewarn pipeline.

    .venv/bin/python -m bench.e2e                 # quick: 2,000 sensors x 50 readings
    .venv/bin/python -m bench.e2e --sensors 10000 --readings 100 --rate 20000

Prints (a) raw aiokafka consume throughput over ``ew.telemetry`` (the baseline),
(b) the pipeline's sustained readings/s from ``ew.telemetry`` until every reading
has passed the site agent (ingest + repartition + detection + lifecycle), and
the ratio b/a; (c) detection latency (reading produced -> alert consumed from
``ew.warnings``) p50/p99 under a steady offered load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer
from kafka import KafkaConsumer, TopicPartition

from pipeline import broker as local_broker
from pipeline import kafka_io
from pipeline.settings import Settings, Topics
from pipeline.simulate import build_registry, generate


def registry_with(n_sensors: int, seed: int = 1) -> dict[str, Any]:
    sites = max(1, n_sensors // 4)
    reg = build_registry(sites, seed)
    while len(reg["sensors"]) < n_sensors:
        sites = int(sites * 1.3) + 1
        reg = build_registry(sites, seed)
    keep = reg["sensors"][:n_sensors]
    used = {s["site_id"] for s in keep}
    return {"sites": [s for s in reg["sites"] if s["site_id"] in used], "sensors": keep}


def normal_value(sensor: dict[str, Any], i: int) -> float:
    """A calm value well inside the sensor's normal band (below every level)."""
    levels = sensor["thresholds"]["levels"]
    lo, hi = sensor["range"]
    first: float = levels["blue"]
    base: float = first * (0.5 if sensor["thresholds"]["direction"] == "high" else 1.5)
    base = min(max(base, lo), hi)
    return round(base + ((i * 7919 + len(sensor["sensor_id"])) % 100 - 50) * 1e-3 * abs(first), 4)


def reading(sensor: dict[str, Any], value: float, ts_ms: int) -> bytes:
    return json.dumps({"site_id": sensor["site_id"], "sensor_id": sensor["sensor_id"],
                       "metric": sensor["metric"], "value": value, "ts": ts_ms,
                       "unit": sensor["unit"]}).encode()


def settings_for(bootstrap: str, tag: str, partitions: int) -> tuple[Settings, dict[str, str]]:
    env = dict(os.environ)
    for name in ("telemetry", "deadletter", "registry", "warnings", "dispositions", "risk"):
        env[f"EWARN_TOPIC_{name.upper()}"] = f"{getattr(Topics(), name)}.{tag}"
    env.update({"EWARN_BOOTSTRAP": bootstrap, "EWARN_PARTITIONS": str(partitions),
                "EWARN_APP_ID": f"bench-{tag}", "EWARN_IDLE_ADVANCE_S": "0"})
    return Settings.from_env(env), env


def preload(bootstrap: str, topic: str, registry: dict[str, Any],
            seconds: float) -> tuple[int, float]:
    """Simulated calm telemetry (as in production: alerts are rare) for ``seconds``."""
    prod = kafka_io.producer(bootstrap, linger_ms=50, acks=1)
    began = time.perf_counter()
    n = 0
    for rec in generate(registry, 1_795_852_800_000, seconds, (), seed=3):
        prod.send(topic, key=rec["sensor_id"].encode(), value=json.dumps(rec).encode())
        n += 1
    prod.flush()
    prod.close()
    return n, time.perf_counter() - began


async def raw_consume(bootstrap: str, topic: str, total: int) -> float:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                max_poll_records=5000)
    await consumer.start()
    n = 0
    began = time.perf_counter()
    try:
        while n < total:
            batch = await consumer.getmany(timeout_ms=2000, max_records=5000)
            if not batch:
                break
            for records in batch.values():
                for r in records:
                    json.loads(r.value)  # the baseline decodes too, as the pipeline must
                    n += 1
    finally:
        await consumer.stop()
    return n / (time.perf_counter() - began)


def group_progress(group_consumer: KafkaConsumer, consumer: KafkaConsumer,
                   topic: str) -> tuple[int, int]:
    """(committed, end) summed over the topic's partitions for the group."""
    parts = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in parts]
    if not tps:
        return 0, 1
    end = consumer.end_offsets(tps)
    done = sum(group_consumer.committed(tp) or 0 for tp in tps)
    return done, sum(end.values())


def start_worker(env: dict[str, str], reg_path: Path, workdir: Path) -> subprocess.Popen[bytes]:
    log = (workdir / "worker.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "worker", "--registry", str(reg_path),
         "--metrics-port", "0", "--web-port", str(local_broker.free_port()),
         "--state-dir", str(workdir / "state")],
        env=env, stdout=log, stderr=subprocess.STDOUT)


def pipeline_throughput(bootstrap: str, sensors: list[dict[str, Any]], per_sensor: int,
                        partitions: int, workdir: Path) -> dict[str, float]:
    tag = f"tp{int(time.time())}"
    settings, env = settings_for(bootstrap, tag, partitions)
    kafka_io.create_topics(bootstrap, kafka_io.topic_specs(settings))
    registry = registry_with_sensors(sensors)
    total, produce_s = preload(bootstrap, settings.topics.telemetry, registry, per_sensor * 10.0)
    raw = asyncio.run(raw_consume(bootstrap, settings.topics.telemetry, total))
    reg_path = workdir / "registry.yaml"
    reg_path.write_text(yaml.safe_dump(registry, sort_keys=False))
    worker = start_worker(env, reg_path, workdir)
    # Only reads the group's committed offsets (never joins it).
    group_consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=settings.app_id,
                                   enable_auto_commit=False)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    internal = f"{settings.app_id}-site-events"
    first_progress: float | None = None
    first_done = 0
    try:
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            ingest_done, _ = group_progress(group_consumer, consumer, settings.topics.telemetry)
            site_done, site_end = group_progress(group_consumer, consumer, internal)
            if first_progress is None and ingest_done > 0:
                first_progress, first_done = time.monotonic(), ingest_done
            if ingest_done >= total and site_done >= site_end and site_end >= total:
                break
            if worker.poll() is not None:
                raise RuntimeError(f"worker died; see {workdir / 'worker.log'}")
            time.sleep(0.5)
        elapsed = time.monotonic() - (first_progress or time.monotonic())
    finally:
        worker.terminate()
        worker.wait(60)
        group_consumer.close()
        consumer.close()
    rate = (total - first_done) / max(elapsed, 1e-9)
    return {"readings": total, "produce_s": produce_s, "raw_per_s": raw,
            "pipeline_per_s": rate, "ratio": rate / raw}


def registry_with_sensors(sensors: list[dict[str, Any]]) -> dict[str, Any]:
    site_ids = {s["site_id"] for s in sensors}
    full = build_registry(len(site_ids) * 2 + 10, 1)
    return {"sites": [s for s in full["sites"] if s["site_id"] in site_ids], "sensors": sensors}


def latency(bootstrap: str, sensors: list[dict[str, Any]], rate: int, seconds: float,
            partitions: int, workdir: Path) -> dict[str, float]:
    """Steady offered load at ``rate`` readings/s with probes stepping to red."""
    tag = f"lat{int(time.time())}"
    settings, env = settings_for(bootstrap, tag, partitions)
    kafka_io.create_topics(bootstrap, kafka_io.topic_specs(settings))
    reg_path = workdir / "registry-lat.yaml"
    reg_path.write_text(yaml.safe_dump(registry_with_sensors(sensors), sort_keys=False))
    worker = start_worker(env, reg_path, workdir)
    probes = [s for s in sensors if s["thresholds"]["direction"] == "high"
              and s["thresholds"]["delay_s"] == 0][:200]
    probe_ids = {p["sensor_id"] for p in probes}
    sent_at: dict[str, float] = {}
    received: dict[str, float] = {}
    stop = threading.Event()

    def listen() -> None:
        c = KafkaConsumer(settings.topics.warnings, bootstrap_servers=bootstrap, group_id=None,
                          auto_offset_reset="earliest")
        while not stop.is_set():
            for msgs in c.poll(timeout_ms=100).values():
                for m in msgs:
                    ev = json.loads(m.value)
                    sid = ev.get("sensor_id")
                    if (sid in probe_ids and ev["kind"] == "threshold"
                            and ev["event"] == "opened" and sid not in received):
                        received[sid] = time.time()
        c.close()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    prod = kafka_io.producer(bootstrap, linger_ms=5, acks=1)
    try:
        time.sleep(10)  # let the worker join its group and load the registry
        # Warm-up: a few readings per sensor so every detector has a baseline.
        began = time.time()
        n = 0
        probe_every = max(1, int(rate * seconds / max(1, len(probes))))
        probe_i = 0
        while time.time() - began < seconds:
            tick = time.time()
            batch = max(1, rate // 20)  # 50 ms slices
            for _ in range(batch):
                s = sensors[n % len(sensors)]
                now_ms = int(time.time() * 1000)
                if n % probe_every == 0 and probe_i < len(probes) and n > len(sensors):
                    p = probes[probe_i]
                    probe_i += 1
                    red = p["thresholds"]["levels"]["red"] * 1.1
                    sent_at[p["sensor_id"]] = time.time()
                    prod.send(settings.topics.telemetry, key=p["sensor_id"].encode(),
                              value=reading(p, red, now_ms))
                elif s["sensor_id"] not in sent_at:
                    prod.send(settings.topics.telemetry, key=s["sensor_id"].encode(),
                              value=reading(s, normal_value(s, n), now_ms))
                n += 1
            spare = 0.05 - (time.time() - tick)
            if spare > 0:
                time.sleep(spare)
        prod.flush()
        offered = n / (time.time() - began)
        deadline = time.time() + 60
        while time.time() < deadline and len(received) < len(sent_at):
            time.sleep(0.5)
    finally:
        stop.set()
        listener.join(5)
        prod.close()
        worker.terminate()
        worker.wait(60)
    lats = sorted(received[k] - sent_at[k] for k in received if k in sent_at)
    if not lats:
        return {"offered_per_s": offered, "probes": len(sent_at), "alerts": 0}
    return {"offered_per_s": offered, "probes": len(sent_at), "alerts": len(lats),
            "p50_s": statistics.median(lats), "p99_s": lats[min(len(lats) - 1,
                                                                 int(0.99 * len(lats)))]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sensors", type=int, default=2000)
    ap.add_argument("--readings", type=int, default=50,
                    help="simulated duration = readings x 10 s (10 s sensors get this many)")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--rate", type=int, default=20000, help="offered load for latency")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--bootstrap", default="")
    args = ap.parse_args()
    # SIGTERM ends the run through the finally blocks, so the broker is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    started = None
    bootstrap = args.bootstrap
    if not bootstrap:
        started = local_broker.start()
        bootstrap = started.bootstrap
        print(f"broker ready in {started.started_in_s:.1f}s at {bootstrap}")
    workdir = Path(tempfile.mkdtemp(prefix="ewarn-bench-"))
    try:
        sensors = registry_with(args.sensors)["sensors"]
        tp = pipeline_throughput(bootstrap, sensors, args.readings, args.partitions, workdir)
        print(f"(a) raw aiokafka consume+decode: {tp['raw_per_s']:,.0f} readings/s "
              f"({tp['readings']:,} readings; preload took {tp['produce_s']:.1f}s)")
        print(f"(b) pipeline telemetry -> site agent: {tp['pipeline_per_s']:,.0f} readings/s")
        print(f"    ratio pipeline/raw = {tp['ratio']:.3f}  (target >= 0.5)")
        lat = latency(bootstrap, sensors, args.rate, args.seconds, args.partitions, workdir)
        print(f"(c) offered {lat['offered_per_s']:,.0f} readings/s; {lat.get('alerts', 0)}/"
              f"{lat['probes']} probe alerts; latency p50 {lat.get('p50_s', float('nan')):.3f}s "
              f"p99 {lat.get('p99_s', float('nan')):.3f}s (target p99 < 1 s)")
    finally:
        if started is not None:
            local_broker.stop(started)


if __name__ == "__main__":
    main()
