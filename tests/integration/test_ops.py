"""Ops tooling against the real broker: /metrics of a fed worker, the console, dispositions.

One worker (private topics and group) is fed a golden scenario plus a few bad
records; its Prometheus scrape must count exactly what ``ewarn detect`` finds
in the same file, and must export every series the Grafana dashboards and the
Prometheus rules query. The operator commands (``ewarn ack``, ``ewarn tail``) run
as subprocesses with the deployment's environment, as an operator would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from pipeline import __version__, kafka_io
from pipeline.metrics import promql_metric_names
from pipeline.model import AlertEvent, EventType, Kind, Level, Responsible
from pipeline.registry import load_registry
from pipeline.settings import Settings
from schemas import validator_for
from tests.integration.harness import Deployment, WorkerProcess, consume, start_worker

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "tests" / "scenarios"
REGISTRY = SCENARIOS / "registry.yaml"
DASHBOARDS = sorted((REPO / "ops" / "grafana" / "dashboards").glob("*.json"))
RULES = sorted((REPO / "ops" / "prometheus" / "rules").glob("*.yml"))

#: Series Prometheus itself adds to every scrape (not the worker's to export).
SCRAPE_SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def detect_offline(registry: Path, telemetry: Path, tmp: Path
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``ewarn detect`` over the file: the oracle for what the worker must count."""
    alerts, dead = tmp / "alerts.jsonl", tmp / "dl.jsonl"
    subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "detect", "--registry", str(registry),
         "--input", str(telemetry), "--alerts", str(alerts), "--deadletter", str(dead)],
        check=True, capture_output=True,
    )
    return ([json.loads(x) for x in alerts.read_text().splitlines() if x.strip()],
            [json.loads(x) for x in dead.read_text().splitlines() if x.strip()])


def deterministic(dep: Deployment) -> Deployment:
    """No wall-clock advance of event time, no source-lag shortcut: equal to offline."""
    dep.extra_env["EWARN_IDLE_ADVANCE_S"] = "0"
    dep.extra_env["EWARN_SOURCE_LAG_S"] = str(7 * 24 * 3600)
    return dep


def replay_file(dep: Deployment, path: Path) -> int:
    return kafka_io.replay(dep.bootstrap, kafka_io.replay_items(kafka_io.open_lines(path)),
                           dep.topics.telemetry)


@dataclass
class Fed:
    dep: Deployment
    worker: WorkerProcess
    lines: int
    expected_alerts: list[dict[str, Any]]
    expected_dead: list[dict[str, Any]]
    scrape: str


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        body: bytes = resp.read()
    return body.decode()


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value)
            for fam in text_string_to_metric_families(text) for s in fam.samples]


def total(text: str, name: str, **labels: str) -> float:
    return sum(v for n, lab, v in samples(text)
               if n == name and all(lab.get(k) == want for k, want in labels.items()))


def exported_names(text: str) -> tuple[set[str], set[str]]:
    """(every series name the scrape declares, the names that carry samples now)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                "summary": ("", "_sum", "_count"), "info": ("_info",)}
    declared: set[str] = set()
    with_samples: set[str] = set()
    for fam in text_string_to_metric_families(text):
        declared |= {fam.name + s for s in suffixes.get(fam.type, ("",))}
        with_samples |= {s.name for s in fam.samples}
    return declared | with_samples, with_samples


@pytest.fixture(scope="module")
def fed(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fed]:
    """A worker that has processed methane_ramp.jsonl plus three bad records."""
    tmp = tmp_path_factory.mktemp("ops")
    lines = (SCENARIOS / "methane_ramp.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    bad = [
        "{not json",
        json.dumps({**first, "sensor_id": "HB-XX-9999/CH4-01"}),  # unknown_sensor
        json.dumps({**first, "unit": "ppm"}),  # unit_mismatch
    ]
    # Bad records in the middle: they must not disturb the readings around them.
    mixed = lines[:100] + bad + lines[100:]
    telemetry = tmp / "telemetry.jsonl"
    telemetry.write_text("\n".join(mixed) + "\n")
    alerts, dead = detect_offline(REGISTRY, telemetry, tmp)
    assert len(dead) == len(bad) and alerts

    dep = deterministic(Deployment(bootstrap, telemetry_partitions=1))
    dep.create_topics()
    worker = start_worker(dep, REGISTRY)
    try:
        assert replay_file(dep, telemetry) == len(mixed)

        def done(text: str) -> bool:
            return (total(text, "ewarn_readings_total") == len(mixed)
                    and total(text, "ewarn_alert_events_total") >= len(alerts)
                    and "ewarn_consumer_lag{" in text)  # the gauge timer has run too

        text, deadline = "", time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                text = scrape(worker.metrics_port)
            except OSError:
                text = ""
            if text and done(text):
                break
            assert worker.proc.poll() is None, worker.log()[-3000:]
            time.sleep(0.5)
        assert done(text), (text[-3000:], worker.log()[-2000:])
        time.sleep(6)  # one more gauge snapshot after the last event
        yield Fed(dep, worker, len(mixed), alerts, dead, scrape(worker.metrics_port))
    finally:
        worker.stop()


def test_metrics_count_what_was_fed(fed: Fed) -> None:
    text = fed.scrape
    accepted = fed.lines - len(fed.expected_dead)
    assert total(text, "ewarn_readings_total", outcome="accepted") == accepted
    assert total(text, "ewarn_readings_total", outcome="rejected") == len(fed.expected_dead)
    by_reason = Counter(d["reason"] for d in fed.expected_dead)
    assert set(by_reason) == {"malformed_json", "unknown_sensor", "unit_mismatch"}
    for reason, n in by_reason.items():
        assert total(text, "ewarn_dead_letters_total", reason=reason) == n, reason
    assert total(text, "ewarn_dead_letters_total") == len(fed.expected_dead)

    # Alert events by (kind, event, level): exactly the offline run's.
    got = Counter({(lab["kind"], lab["event"], lab["level"]): int(v)
                   for n, lab, v in samples(text) if n == "ewarn_alert_events_total" and v})
    expected = Counter((a["kind"], a["event"], a["level"] or "none")
                       for a in fed.expected_alerts)
    assert got == expected
    escalated = sum(1 for a in fed.expected_alerts if a["event"] == "escalated")
    assert escalated and total(text, "ewarn_escalations_total") == escalated
    # Labels are attributed from the registry, never left unknown for good readings.
    registry = load_registry(REGISTRY)
    site = registry.sites[fed.expected_alerts[0]["site_id"]]
    assert total(text, "ewarn_alert_events_total", industry=site.industry,
                 province=site.region[0]) == len(fed.expected_alerts)
    newest = max(json.loads(x)["ts"] for x in
                 (SCENARIOS / "methane_ramp.jsonl").read_text().splitlines())
    from pipeline.timeutil import parse_rfc3339
    assert total(text, "ewarn_last_reading_timestamp_seconds",
                 province=site.region[0]) == parse_rfc3339(newest) / 1000.0

    # The worker and its registry.
    info = [lab for n, lab, v in samples(text) if n == "ewarn_worker_info" and v == 1]
    assert len(info) == 1 and info[0]["version"] == __version__
    assert info[0]["worker_id"].startswith(fed.dep.app_id)
    assert total(text, "ewarn_registry_sites") == len(registry.sites)
    assert total(text, "ewarn_registry_sensors") == len(registry.sensors)
    # Gauges from the snapshot timer: an orange/red threshold alert is a hidden danger
    # until closed, and every stage that ran has timings.
    hidden = {a["alert_id"] for a in fed.expected_alerts
              if a["level"] in ("orange", "red") and a["event"] != "closed"}
    assert total(text, "ewarn_hidden_dangers") == len(hidden) > 0
    stages = {lab["stage"] for n, lab, v in samples(text)
              if n == "ewarn_batch_processing_seconds_count" and v > 0}
    assert {"ingest", "site"} <= stages
    assert total(text, "ewarn_detection_latency_seconds_count") == sum(
        1 for a in fed.expected_alerts if a["event"] in ("opened", "updated"))


def dashboard_exprs() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]], where: str) -> None:
        for panel in panels:
            for target in panel.get("targets") or []:
                if target.get("expr"):
                    out.append((f"{where}: {panel.get('title')}", target["expr"]))
            walk(panel.get("panels") or [], where)

    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        walk(board.get("panels") or [], path.name)
        for var in (board.get("templating") or {}).get("list", []):
            query = var.get("query")
            query = query.get("query") if isinstance(query, dict) else query
            if m := re.match(r"\s*label_values\(\s*([^,()]+)", str(query or "")):
                out.append((f"{path.name}: ${var.get('name')}", m.group(1)))
    return out


def rule_exprs() -> tuple[list[tuple[str, str]], set[str]]:
    exprs, recorded = [], set()
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                exprs.append((f"{path.name}: {name}", str(rule["expr"])))
                if "record" in rule:
                    recorded.add(rule["record"])
    return exprs, recorded


def test_dashboards_and_rules_query_only_exported_series(fed: Fed) -> None:
    declared, with_samples = exported_names(fed.scrape)
    rules, recorded = rule_exprs()
    panels = dashboard_exprs()
    assert len(panels) >= 10 and len(rules) >= 5, "dashboards or rules not found"
    referenced: dict[str, list[str]] = {}
    for where, expr in panels + rules:
        names = promql_metric_names(expr)
        assert names, (where, expr)
        for name in names:
            referenced.setdefault(name, []).append(where)
    unknown = {n: w for n, w in referenced.items()
               if n not in declared and n not in recorded and n not in SCRAPE_SYNTHETIC}
    assert not unknown, f"queried but not exported by the worker: {unknown}"
    # And they carry data after this input, so the panels are not empty. Only these
    # may legitimately be empty here: no sensor went stale, every alert resolved.
    may_be_empty = {"ewarn_stale_sensors", "ewarn_open_alerts"}
    empty = {n: w for n, w in referenced.items() if n.startswith("ewarn_")
             and n not in with_samples and n not in may_be_empty}
    assert not empty, f"exported but never set by a fed worker: {empty}"


def test_metrics_bind_loopback_and_web_hides_tables(fed: Fed) -> None:
    assert Settings().metrics_host == "127.0.0.1" and Settings().web_host == "127.0.0.1"
    listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
    local = {line.split()[1] for line in listening if line.split()[3] == "0A"}  # LISTEN
    assert f"0100007F:{fed.worker.metrics_port:04X}" in local
    assert f"00000000:{fed.worker.metrics_port:04X}" not in local
    web = f"http://127.0.0.1:{fed.worker.web_port}"

    def status(path: str) -> int:
        try:
            with urllib.request.urlopen(web + path, timeout=5) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    assert status("/") == 200
    for path in ("/table/", "/table/ewarn-state/", "/table/ewarn-state/sensor:x/", "/graph/"):
        assert status(path) == 404, path


def run_cli(args: list[str], env: dict[str, str], timeout_s: float = 60
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env=env, text=True,
                          capture_output=True, timeout=timeout_s)


def test_ack_writes_a_valid_disposition_the_worker_applies(fed: Fed) -> None:
    dep = fed.dep
    alert = next(a for a in fed.expected_alerts if a["kind"] == "threshold")
    done = run_cli(["ack", alert["alert_id"], "--by", "op-7", "--note", "x",
                    "--bootstrap", dep.bootstrap], dep.env())
    assert done.returncode == 0, done.stderr
    assert alert["alert_id"] in done.stdout and "op-7" in done.stdout
    written = consume(dep.bootstrap, dep.topics.dispositions, until=lambda m: len(m) >= 1,
                      timeout_s=30)
    assert len(written) == 1
    msg = written[0]
    validator_for("disposition").validate(msg)
    assert (msg["alert_id"], msg["action"], msg["by"], msg["note"]) == (
        alert["alert_id"], "acknowledge", "op-7", "x")
    # The worker routes it to the alert's site and the lifecycle answers on ew.warnings.
    acked = consume(dep.bootstrap, dep.topics.warnings, timeout_s=30, until=lambda evs: any(
        e["alert_id"] == alert["alert_id"] and e["event"] == "acknowledged" for e in evs))
    ack = [e for e in acked if e["alert_id"] == alert["alert_id"]
           and e["event"] == "acknowledged"]
    assert len(ack) == 1, [(e["alert_id"], e["event"]) for e in acked[-5:]]
    dead = consume(dep.bootstrap, dep.topics.deadletter, until=lambda d: False, timeout_s=2)
    assert len(dead) == len(fed.expected_dead), dead[len(fed.expected_dead):]

    # Without an operator: refused, non-zero, and nothing more on the topic.
    for extra in ([], ["--by", "  "]):
        refused = run_cli(["ack", alert["alert_id"], *extra, "--bootstrap", dep.bootstrap],
                          dep.env())
        assert refused.returncode != 0
        assert "Traceback" not in refused.stderr
    time.sleep(1)
    again = consume(dep.bootstrap, dep.topics.dispositions, until=lambda m: False, timeout_s=3)
    assert len(again) == 1


def alert_event(alert_id: str, seq: int, event: EventType, kind: Kind, level: Level | None,
                message: str, site: str = "HB-WH-0001") -> dict[str, Any]:
    ts = 1_795_852_800_000 + seq * 60_000
    return AlertEvent(
        alert_id=alert_id, event=event, kind=kind, level=level,
        site_id=site, sensor_id=alert_id.split(":")[0], metric="ch4", value=1.2,
        threshold=1.0, score=None, started_at=ts, ts=ts, message=message,
        responsible=Responsible("Example Mining Co.", "Wuhan EMB", ("Hubei", "Wuhan", "X")),
        seq=seq, emitted_at=ts,
    ).to_dict()


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_tail_prints_each_event_once_and_the_board(
    bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("warn", partitions=2)
    a = "HB-WH-0001/CH4-01:threshold:1795852800000"
    b = "HB-WH-0002/CO-01:stale:1795852800000"
    events = [
        alert_event(a, 1, "opened", "threshold", "orange", "MSG-A1 CH4 past orange"),
        alert_event(b, 1, "opened", "stale", "yellow", "MSG-B1 CO silent", site="HB-WH-0002"),
        alert_event(a, 2, "updated", "threshold", "red", "MSG-A2 CH4 past red"),
    ]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    # a repeat of (a, 1): at-least-once delivery; the console must drop it
    for ev in [*events, events[0]]:
        producer.send(topic, key=ev["alert_id"].encode(), value=json.dumps(ev).encode())
    producer.send(topic, key=b"junk", value=b"not json at all")  # skipped, not fatal
    producer.flush()
    producer.close()

    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "200"}
    done = run_cli(["tail", "--duration", "5", "--topic", topic, "--bootstrap", bootstrap],
                   env)
    assert done.returncode == 0, done.stderr
    raw = done.stdout
    plain = ANSI.sub("", raw)
    for marker in ("MSG-A1", "MSG-A2", "MSG-B1"):
        assert plain.count(marker) == 1, (marker, plain)
    line_a2 = next(x for x in raw.splitlines() if "MSG-A2" in x)
    assert "\x1b[" in line_a2.split("MSG-A2")[0], "event lines are coloured"
    assert re.search(r"RED\s+updated\s+threshold", ANSI.sub("", line_a2))
    # The board: one active red and one yellow; a's hidden danger listed once.
    assert "Open alerts by site" in plain and "Hidden-danger list" in plain
    summary = next(x for x in plain.splitlines() if x.startswith("Active:"))
    assert re.search(r"red 1\s+orange 0\s+yellow 1\s+blue 0", summary), summary
    assert "hidden dangers 1" in summary
    board = plain.split("Open alerts by site", 1)[1]
    assert board.count(a) == 2 and board.count(b) == 1  # a: by site and hidden list

    # A city desk that follows only orange and red: b (yellow) is not theirs.
    done = run_cli(["tail", "--duration", "5", "--topic", topic, "--bootstrap", bootstrap,
                    "--territory", "Hubei/Wuhan", "--min-level", "orange"], env)
    assert done.returncode == 0, done.stderr
    plain = ANSI.sub("", done.stdout)
    assert plain.count("MSG-A1") == 1 and plain.count("MSG-A2") == 1, plain
    assert "MSG-B1" not in plain and b not in plain
