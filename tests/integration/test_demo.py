"""``ewarn demo`` end to end: every scheduled incident reaches the console, nothing survives it.

The demo is what a newcomer runs first (``./run demo``), so it is exercised as a
user would: a subprocess whose stdout is read line by line. Runs against the
session broker use a private set of topics and consumer group (``Deployment``
environment) so they never see another test's alerts; one run starts and stops
its own broker. Every check that "nothing is left" names the exact processes
the demo started (its worker by the demo's private work directory, its broker by
the port it announced), because other test sessions may run brokers meanwhile.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from pipeline.broker import free_port
from tests.integration.harness import Deployment

pytestmark = pytest.mark.integration

#: One console event line: ``ts LEVEL event [Tn ]kind message``.
EVENT_LINE = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d) (?P<level>BLUE|YELLOW|ORANGE|RED|-)\s+"
    r"(?P<event>opened|updated|escalated|acknowledged|resolved|closed)\s+(?:T\d )?"
    r"(?P<kind>\w+)\s+(?P<message>.*)$"
)
INCIDENT_LINE = re.compile(r"incident scheduled: (?P<kind>\w+):(?P<target>\S+)@\S+")
WORKDIR_LINE = re.compile(r"registry (?P<workdir>/\S+)/registry\.yaml")
BROKER_PORT_LINE = re.compile(r"starting Kafka on 127\.0\.0\.1:(?P<port>\d+)")
WORKER_LOG_LINE = re.compile(r"Starting the worker \(log (?P<path>/\S+)\)")

#: Which alert kinds each simulator incident must produce on its sensor.
EXPECTED_KINDS = {"stuck": {"flatline"}, "silent": {"stale"}, "broken": {"fault"}}


@dataclass
class Event:
    level: str
    event: str
    kind: str
    message: str

    @property
    def sensor_id(self) -> str | None:
        found = re.findall(r"\[([^\[\]]+/[^\[\]]+)\]", self.message)
        return found[-1] if found else None


@dataclass
class DemoRun:
    """A running ``ewarn demo`` whose stdout lines are collected with their arrival time."""

    proc: subprocess.Popen[str]
    lines: list[tuple[float, str]] = field(default_factory=list)
    eof: bool = False
    _cond: threading.Condition = field(default_factory=threading.Condition)
    # The worker's log, opened while the demo runs: the handle still reads it after the
    # demo removed its work directory, so a failure can show what the worker did.
    _worker_log: IO[bytes] | None = None

    @classmethod
    def start(cls, args: list[str], env: dict[str, str] | None = None) -> DemoRun:
        env = dict(env or os.environ)
        env["COLUMNS"] = "200"  # keep the board readable in the failure output
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "demo", *args], env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        run = cls(proc)
        threading.Thread(target=run._read, daemon=True).start()
        return run

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if m := WORKER_LOG_LINE.search(line):
                threading.Thread(target=self._open_worker_log, args=(Path(m["path"]),),
                                 daemon=True).start()
            with self._cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._cond.notify_all()
        with self._cond:
            self.eof = True
            self._cond.notify_all()

    def _open_worker_log(self, path: Path) -> None:
        deadline = time.monotonic() + 30  # the demo announces the log just before opening it
        while time.monotonic() < deadline and self._worker_log is None:
            try:
                self._worker_log = path.open("rb")
            except FileNotFoundError:
                time.sleep(0.05)

    def worker_log(self, tail: int = 3000) -> str:
        """The end of the demo worker's log (empty if it was never opened)."""
        if self._worker_log is None:
            return ""
        self._worker_log.seek(0)
        return self._worker_log.read().decode(errors="replace")[-tail:]

    def diagnostics(self) -> str:
        return f"{self.text()[-3000:]}\n--- worker log (end) ---\n{self.worker_log(12000)}"

    def text(self) -> str:
        with self._cond:
            return "\n".join(line for _, line in self.lines)

    def wait_for(self, pattern: re.Pattern[str], timeout_s: float) -> re.Match[str]:
        """The first line matching ``pattern`` (waiting for it to be printed)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for _, line in self.lines:
                    if m := pattern.search(line):
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    raise AssertionError(f"no line matching {pattern.pattern!r}:\n"
                                         f"{self.text()[-4000:]}")
                self._cond.wait(min(left, 0.5))

    def interrupt_at(
        self, pattern: re.Pattern[str], wait_s: float, finish_s: float
    ) -> tuple[int, re.Match[str]]:
        """SIGINT once ``pattern`` is printed; the exit code and the matched line.

        The process never outlives the call (killed if it ignored the signal).
        """
        try:
            seen = self.wait_for(pattern, wait_s)
            self.proc.send_signal(signal.SIGINT)
            return self.finish(finish_s), seen
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def finish(self, timeout_s: float) -> int:
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(
                f"demo did not stop in {timeout_s}s:\n{self.text()[-4000:]}") from None
        finally:
            with self._cond:  # the reader takes the last lines
                self._cond.wait_for(lambda: self.eof, 10)

    def events(self) -> list[Event]:
        out = []
        for _, line in list(self.lines):
            if m := EVENT_LINE.match(line):
                out.append(Event(m["level"], m["event"], m["kind"], m["message"]))
        return out

    def summary(self) -> dict[str, object]:
        last = [line for _, line in self.lines if line.startswith("{")]
        assert last, f"no JSON summary line:\n{self.text()[-3000:]}"
        parsed: dict[str, object] = json.loads(last[-1])
        return parsed


def processes_matching(marker: str) -> list[str]:
    """Command lines of live processes containing ``marker`` (zombies excluded)."""
    found = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True).stdout
    alive = []
    for line in found.splitlines():
        pid = line.split(" ", 1)[0]
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            alive.append(line)
    return alive


def kafka_pids() -> set[int]:
    return {int(line.split(" ", 1)[0]) for line in processes_matching("kafka.Kafka")}


def broker_pid_on_port(port: int) -> int | None:
    """The kafka.Kafka process whose config listens on ``port`` (its last argument)."""
    for pid in kafka_pids():
        try:
            config = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[-2].decode()
            if f"PLAINTEXT://127.0.0.1:{port}," in Path(config).read_text():
                return pid
        except (OSError, IndexError, UnicodeDecodeError):
            continue
    return None


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def assert_nothing_left(run: DemoRun) -> None:
    workdir = run.wait_for(WORKDIR_LINE, 0)["workdir"]
    assert processes_matching(workdir) == [], "a process the demo started survived it"
    assert not Path(workdir).exists(), "the demo's work directory was not removed"


def test_demo_shows_every_scheduled_incident(bootstrap: str) -> None:
    """Against a running cluster, each incident's alert kind shows on its own sensor.

    Warm-up 2400 s (the stuck sensor freezes inside it, so flatline is due ~300
    simulated seconds into the live part) and speed 30: every alert is due
    within ~25 s of wall time after the live start; 75 s leaves room for the
    worker's start-up on a loaded machine.
    """
    dep = Deployment(bootstrap)
    # INFO: if no alert arrives, the failure shows the worker's group assignment and
    # recovery (a rare "no alert at all" on a fresh broker is not explained yet)
    dep.extra_env["EWARN_LOGLEVEL"] = "info"
    metrics_port = free_port()
    began = time.monotonic()
    run = DemoRun.start(["--bootstrap", bootstrap, "--duration", "75", "--speed", "30",
                         "--warmup", "2400", "--metrics-port", str(metrics_port),
                         "--board-every", "20"], env=dep.env())
    try:
        run.wait_for(re.compile(r"Following "), 60)
        # The worker's exporter answers while the demo runs, with readings counted.
        deadline, scraped = time.monotonic() + 60, ""
        while "ewarn_readings_total{" not in scraped and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                            timeout=2) as resp:
                    scraped = resp.read().decode()
            except OSError:
                time.sleep(1)
        assert 'outcome="accepted"' in scraped, "the demo worker's /metrics never counted"
        code = run.finish(150)
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    elapsed = time.monotonic() - began
    out = run.text()
    assert code == 0, run.diagnostics()
    summary = run.summary()
    assert summary["interrupted"] is False

    incidents = [(m["kind"], m["target"]) for m in INCIDENT_LINE.finditer(out)]
    assert sorted(k for k, _ in incidents) == ["broken", "ramp", "ramp", "silent", "stuck"]
    events = run.events()
    assert events, run.diagnostics()
    kinds_by_sensor: dict[str, set[str]] = {}
    for ev in events:
        if ev.sensor_id:
            kinds_by_sensor.setdefault(ev.sensor_id, set()).add(ev.kind)
    missing = []
    for kind, target in incidents:
        got = kinds_by_sensor.get(target, set())
        if kind == "ramp" and "/O2-" in target:
            want = {"threshold"}
            lows = [e for e in events if e.sensor_id == target and e.kind == "threshold"
                    and e.event == "opened"]
            assert all("<=" in e.message for e in lows), "O2 limits are low-direction"
        elif kind == "ramp":
            want = {"forecast", "threshold"}
        else:
            want = EXPECTED_KINDS[kind]
        if not want <= got:
            missing.append((kind, target, sorted(want - got)))
    assert not missing, (missing, run.diagnostics())
    assert set(summary["kinds"]) >= {"forecast", "threshold", "flatline", "stale",  # type: ignore[call-overload]
                                     "fault"}
    # Only the silenced sensor goes stale: a fast warm-up must not look like an outage.
    stale = {e.sensor_id for e in events if e.kind == "stale"}
    silent = {t for k, t in incidents if k == "silent"}
    assert stale <= silent, stale - silent
    # Each line once: the console drops at-least-once repeats.
    opened = [(e.sensor_id, e.kind, e.message) for e in events if e.event == "opened"]
    assert len(opened) == len(set(opened))
    assert_nothing_left(run)
    assert elapsed < 150, elapsed


def test_demo_without_bootstrap_starts_and_stops_its_broker() -> None:
    """No --bootstrap: the demo runs its own broker, prints while it starts, removes it."""
    before = kafka_pids()
    run = DemoRun.start(["--duration", "40", "--speed", "30", "--warmup", "600",
                         "--metrics-port", str(free_port())])
    broker_pid = None
    try:
        port = int(run.wait_for(BROKER_PORT_LINE, 120)["port"])
        ready = run.wait_for(re.compile(r"Kafka ready at 127\.0\.0\.1:(\d+)"), 120)
        assert int(ready[1]) == port
        broker_pid = broker_pid_on_port(port)
        assert broker_pid is not None and broker_pid not in before
        # Progress was printed before the broker was ready, not all at the end.
        stamps = {line: t for t, line in run.lines}
        first = next(t for line, t in stamps.items() if "Starting a local Kafka broker" in line)
        ready_at = next(t for line, t in stamps.items() if "Kafka ready at" in line)
        assert first < ready_at
        code = run.finish(120)
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    assert code == 0, run.text()[-4000:]
    assert run.summary()["interrupted"] is False
    assert broker_pid not in kafka_pids(), "the demo's broker survived it"
    assert not port_open(port)
    assert_nothing_left(run)


def test_demo_ctrl_c_stops_everything(bootstrap: str) -> None:
    """SIGINT while alerts flow, and SIGINT while the broker starts: nothing survives."""
    run = DemoRun.start(["--bootstrap", bootstrap, "--speed", "30", "--warmup", "600",
                         "--metrics-port", str(free_port())], env=Deployment(bootstrap).env())
    code, _ = run.interrupt_at(EVENT_LINE, 90, 90)  # the worker is up and publishing
    assert code in (0, 130), run.text()[-4000:]
    assert run.summary()["interrupted"] is True
    assert_nothing_left(run)

    # Interrupted while its own broker is still starting: the broker must not survive.
    run = DemoRun.start(["--metrics-port", str(free_port())])
    code, seen = run.interrupt_at(BROKER_PORT_LINE, 120, 60)
    port = int(seen["port"])
    assert code in (0, 130), run.text()[-4000:]
    time.sleep(0.5)
    assert broker_pid_on_port(port) is None and not port_open(port), run.text()[-3000:]
