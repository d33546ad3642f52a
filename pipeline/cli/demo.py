"""``ewarn demo``: the whole system on one machine, in one command.

Starts (unless ``--bootstrap`` names a running cluster) a local Kafka broker,
creates the topics, writes a simulated registry, starts a worker (metrics on
``--metrics-port``), feeds simulated sites with a few scheduled incidents, and
shows the operator console. Ctrl-C or ``--duration`` stops everything it started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console

from pipeline import broker as local_broker
from pipeline.cli._app import app, fail
from pipeline.cli.console import BoardPrinter, follow_warnings, render_board
from pipeline.detect.params import DetectorParams
from pipeline.opsview import Board
from pipeline.settings import Settings
from pipeline.timeutil import parse_rfc3339

console = Console()

#: Frozen event time before a stuck sensor is reported as ``flatline``.
FLATLINE_WINDOW_S = DetectorParams().flatline_window_s


def demo_incidents(registry: dict[str, Any], start_after_s: float) -> list[str]:
    """One incident of each kind the operators should see, on fitting sensors.

    Times are seconds of simulated time after the stream starts; the live part
    begins at ``start_after_s`` (the warm-up of history before it lets the
    detectors learn each sensor's normal behaviour). Every alert kind should show
    within ~1000 simulated seconds of the live part (under two minutes at the
    default speed), so each incident is placed by what its detector needs:

    - the gas ramp (forecast, then blue -> red thresholds) and the O2 ramp (low
      limits) must be slow for the trend to be significant before the breach;
    - ``stuck`` needs 30 min of frozen event time before ``flatline`` fires, so it
      starts inside the warm-up (after some history, so the sensor has varied);
    - ``silent`` turns ``stale`` after three missed intervals, ``broken`` is an
      immediate ``fault``.
    """
    by_metric: dict[str, list[str]] = {}
    for sensor in registry["sensors"]:
        by_metric.setdefault(sensor["metric"], []).append(sensor["sensor_id"])

    def pick(*metrics: str, index: int = 0) -> str | None:
        for metric in metrics:
            ids = by_metric.get(metric, [])
            if len(ids) > index:
                return ids[index]
        return None

    t = start_after_s
    # Flatline due ~300 s into the live part; never before 300 s of normal history.
    stuck_at = max(t - FLATLINE_WINDOW_S + 300.0, min(t, 300.0))
    plan = [
        # forecast and thresholds on one gas sensor (high limits)
        ("ramp", pick("ch4", "flammable_gas", "lel"), f"{t + 60:.0f}+1500"),
        ("ramp", pick("o2"), f"{t + 120:.0f}+1200"),  # low-direction limits
        ("stuck", pick("temperature", "pressure", "tank_level"), f"{stuck_at:.0f}+3600"),
        ("silent", pick("co", "h2s", "dust", "pm10"), f"{t + 60:.0f}+3000"),
        ("broken", pick("pressure", "noise", "wind_speed"), f"{t + 90:.0f}+600"),
    ]
    return [f"{kind}:{target}@{when}" for kind, target, when in plan if target]


def _paced(records: Iterator[dict[str, Any]], live_from_ms: int, speed: float,
           stop: threading.Event) -> Iterator[dict[str, Any]]:
    """History before ``live_from_ms`` as fast as possible, then ``speed`` x real time."""
    t0: float | None = None
    for rec in records:
        if stop.is_set():
            return
        ts = parse_rfc3339(rec["ts"]) if isinstance(rec["ts"], str) else int(rec["ts"])
        if ts >= live_from_ms:
            t0 = time.monotonic() if t0 is None else t0
            due = t0 + (ts - live_from_ms) / 1000.0 / speed
            # one clock reading per check: read twice, a busy machine could pass the
            # check and then ask sleep() for a negative time
            while not stop.is_set() and (left := due - time.monotonic()) > 0:
                time.sleep(min(0.2, left))
        yield rec


def _feed(bootstrap: str, topic: str, records: Iterator[dict[str, Any]],
          errors: list[BaseException]) -> None:
    from pipeline import kafka_io

    try:
        kafka_io.produce_paced(records, topic, bootstrap, speed=None)
    except BaseException as exc:
        errors.append(exc)


def _worker_env(warmup_s: float) -> dict[str, str]:
    """The worker's environment: ours, plus a source lag that covers the warm-up.

    The warm-up history is a backlog the worker reads as fast as it can, and the
    consumer fetches one telemetry partition far ahead of another; with the
    default bound (10 min) the site watermark would run past the slower sources
    and call their sensors stale by the hundred. Live, every partition carries
    readings, so a larger bound costs nothing here. An explicit
    ``EWARN_SOURCE_LAG_S`` wins.
    """
    env = dict(os.environ)
    if "EWARN_SOURCE_LAG_S" not in env:
        default = Settings().source_lag_s
        env["EWARN_SOURCE_LAG_S"] = str(max(default, warmup_s + default))
    return env


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)


@app.command("demo")
def demo(
    bootstrap: str = typer.Option("", "--bootstrap", help="Use this Kafka, not a local one."),
    sites: int = typer.Option(6, help="Simulated sites."),
    seed: int = typer.Option(7, help="Simulator seed."),
    speed: float = typer.Option(10.0, help="Simulated seconds per wall second (live part)."),
    warmup: float = typer.Option(3600.0, help="Seconds of history fed first, fast."),
    duration: float = typer.Option(0.0, help="Stop after N wall seconds (0 = until Ctrl-C)."),
    metrics_port: int = typer.Option(9100, help="Worker's Prometheus /metrics port."),
    board_every: float = typer.Option(15.0, help="Print the alert board every N seconds."),
) -> None:
    """Run broker, worker, simulated sites and the console; Ctrl-C stops everything."""
    from pipeline import kafka_io
    from pipeline.simulate import build_registry, generate, parse_incident

    if speed <= 0:
        fail("--speed must be > 0")
    if warmup < 0 or duration < 0 or sites < 1:
        fail("--warmup and --duration must be >= 0, --sites >= 1")
    workdir = Path(tempfile.mkdtemp(prefix="ewarn-demo-"))
    started: local_broker.BrokerInfo | None = None
    worker: subprocess.Popen[bytes] | None = None
    worker_failed = False
    stop = threading.Event()
    feeder: threading.Thread | None = None
    board = Board()
    interrupted = False

    def on_sigterm(_sig: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        if not bootstrap:
            console.print("[bold]Starting a local Kafka broker[/] (first run fetches its jars) ...")
            started = local_broker.start(progress=lambda m: console.print(f"  [dim]{m}[/]"))
            bootstrap = started.bootstrap
            console.print(f"  Kafka ready at [cyan]{bootstrap}[/] in {started.started_in_s:.1f}s")
        settings = Settings.from_env(bootstrap=bootstrap)
        kafka_io.create_topics(bootstrap, kafka_io.topic_specs(settings))

        registry = build_registry(sites, seed)
        reg_path = workdir / "registry.yaml"
        reg_path.write_text(yaml.safe_dump(registry, sort_keys=False, allow_unicode=True))
        now_ms = int(time.time() * 1000)
        start_ms = now_ms - int(warmup * 1000)
        specs = demo_incidents(registry, warmup)
        incidents = [parse_incident(s) for s in specs]
        console.print(f"[bold]Simulating {sites} sites[/], {len(registry['sensors'])} sensors; "
                      f"registry {reg_path}")
        for spec in specs:
            console.print(f"  incident scheduled: [yellow]{spec}[/]", soft_wrap=True)

        log_path = workdir / "worker.log"
        console.print(f"[bold]Starting the worker[/] (log {log_path}); metrics on "
                      f"[cyan]http://127.0.0.1:{metrics_port}/metrics[/]", soft_wrap=True)
        with log_path.open("wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "pipeline.cli", "worker", "--bootstrap", bootstrap,
                 "--registry", str(reg_path), "--metrics-port", str(metrics_port),
                 # a free web port: a second worker on this machine must not clash
                 "--web-port", str(local_broker.free_port()),
                 "--state-dir", str(workdir / "state")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=_worker_env(warmup),
                # Ctrl-C reaches the demo only; it stops the worker in order (feed first).
                start_new_session=True,
            )

        errors: list[BaseException] = []
        records = _paced(generate(registry, start_ms, None, incidents, seed),
                         now_ms, speed, stop)
        feeder = threading.Thread(target=_feed, args=(bootstrap, settings.topics.telemetry,
                                                      records, errors), daemon=True)
        feeder.start()
        console.print(f"[bold]Following {settings.topics.warnings}[/] (Ctrl-C to stop) ...\n")
        on_event = BoardPrinter(board, console, board_every)
        deadline = time.monotonic() + duration if duration else None

        def should_stop() -> bool:
            nonlocal worker_failed
            if worker is not None and worker.poll() is not None:
                worker_failed = True
                console.print(f"[red]worker exited ({worker.returncode}); see {log_path}[/]",
                              soft_wrap=True)
                return True
            return stop.is_set() or bool(errors) or (
                deadline is not None and time.monotonic() > deadline)

        follow_warnings(bootstrap, settings.topics.warnings, on_event, True, None, should_stop)
        if errors:
            fail(f"simulator feed failed: {errors[0]}")
        if worker_failed:
            fail(f"the worker stopped unexpectedly; its log: {log_path}")
    except KeyboardInterrupt:
        interrupted = True
    except local_broker.BrokerError as exc:
        fail(str(exc))
    finally:
        # A second Ctrl-C must not leave a worker or a broker behind: every step
        # below is bounded in time, so it is safe to finish them uninterrupted.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            stop.set()
            console.print("\n[bold]Stopping[/] ...")
            if feeder is not None:
                feeder.join(timeout=15)
            if worker is not None:
                _stop_worker(worker)
            if started is not None:
                local_broker.stop(started)
            if not worker_failed:
                shutil.rmtree(workdir, ignore_errors=True)
            console.print(render_board(board))
            summary = {"events": board.events, "alerts": len(board.alerts),
                       "kinds": sorted({a.kind for a in board.alerts.values()}),
                       "interrupted": interrupted}
            # One line, never wrapped: scripts read it as JSON.
            console.print(json.dumps(summary), highlight=False, soft_wrap=True)
        finally:
            signal.signal(signal.SIGINT, previous)
