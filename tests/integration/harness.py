"""Helpers to run real ewarn workers (subprocesses) against the test broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from pipeline import kafka_io
from pipeline.broker import free_port
from pipeline.settings import Settings, Topics


@dataclass
class Deployment:
    """A private set of topics and a consumer group: tests never see each other's data."""

    bootstrap: str
    partitions: int = 4
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    extra_env: dict[str, str] = field(default_factory=dict)
    # ew.telemetry's own partition count; 1 keeps the file's arrival order for the
    # whole topic, so even the interleaving of one site's sensors equals the file's.
    telemetry_partitions: int | None = None

    @property
    def topics(self) -> Topics:
        t = self.tag
        return Topics(telemetry=f"ew.telemetry.{t}", deadletter=f"ew.deadletter.{t}",
                      registry=f"ew.registry.{t}", warnings=f"ew.warnings.{t}",
                      dispositions=f"ew.dispositions.{t}", risk=f"ew.risk.{t}")

    @property
    def app_id(self) -> str:
        return f"ewarn-{self.tag}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for name in ("telemetry", "deadletter", "registry", "warnings", "dispositions", "risk"):
            env[f"EWARN_TOPIC_{name.upper()}"] = getattr(self.topics, name)
        env["EWARN_BOOTSTRAP"] = self.bootstrap
        env["EWARN_PARTITIONS"] = str(self.partitions)
        env["EWARN_APP_ID"] = self.app_id
        env["EWARN_IDLE_TICK_S"] = "0.5"
        env.update(self.extra_env)
        return env

    def settings(self) -> Settings:
        return Settings.from_env(self.env())

    def create_topics(self) -> None:
        specs = kafka_io.topic_specs(self.settings())
        if self.telemetry_partitions is not None:
            specs = [
                kafka_io.TopicSpec(s.name, self.telemetry_partitions, s.configs)
                if s.name == self.topics.telemetry else s
                for s in specs
            ]
        kafka_io.create_topics(self.bootstrap, specs)


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    log_path: Path
    metrics_port: int
    web_port: int

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def start_worker(dep: Deployment, registry: Path | None = None,
                 state_dir: Path | None = None) -> WorkerProcess:
    metrics_port, web_port = free_port(), free_port()
    state_dir = state_dir or Path(tempfile.mkdtemp(prefix="ewarn-state-"))
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / f"worker-{uuid.uuid4().hex[:6]}.log"
    cmd = [sys.executable, "-m", "pipeline.cli", "worker", "--web-port", str(web_port),
           "--metrics-port", str(metrics_port), "--state-dir", str(state_dir),
           "--loglevel", "warning"]
    if registry is not None:
        cmd += ["--registry", str(registry)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=dep.env(), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    return WorkerProcess(proc, log_path, metrics_port, web_port)


def consume(bootstrap: str, topic: str, until: Callable[[list[dict[str, Any]]], bool],
            timeout_s: float = 60.0, idle_s: float | None = None) -> list[dict[str, Any]]:
    """Read ``topic`` from the beginning until ``until(records)`` holds (or time runs out).

    With ``idle_s`` the read also stops once nothing new arrived for that long
    after ``until`` became true (to catch late extra events).
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="earliest")
    out: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + timeout_s
        tps: list[TopicPartition] = []
        while not tps and time.monotonic() < deadline:
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
            time.sleep(0.1)
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        done_at: float | None = None
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            got = False
            for msgs in consumer.poll(timeout_ms=200).values():
                for msg in msgs:
                    out.append(json.loads(msg.value))
                    got = True
            if got:
                last_new = time.monotonic()
            if done_at is None and until(out):
                done_at = time.monotonic()
                if idle_s is None:
                    break
            if done_at is not None and idle_s is not None and time.monotonic() - last_new > idle_s:
                break
        return out
    finally:
        consumer.close()


def wait_until(pred: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)
