"""``ewarn simulate``: write a plausible registry and its telemetry, to files or Kafka.

The generator is :mod:`pipeline.simulate` (pure, deterministic); this module only
parses options, writes YAML/JSONL, or hands the lazy stream to
``pipeline.kafka_io.produce_paced`` for a paced feed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import typer
import yaml

from pipeline.cli._app import app, fail
from pipeline.settings import DEFAULT_BOOTSTRAP
from pipeline.simulate import Incident, build_registry, generate, parse_incident
from pipeline.timeutil import parse_rfc3339

#: File output starts here unless --start is given: the same command gives the same bytes.
DEFAULT_FILE_START = "2026-11-28T00:00:00Z"


@contextmanager
def _open_out(path: Path | None) -> Iterator[IO[str]]:
    if path is None or str(path) == "-":
        yield sys.stdout
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        yield fh


def _load_registry_file(path: Path) -> dict[str, Any]:
    """Validate with the project's loader (errors name file and line), keep the plain dict."""
    from pipeline.registry import RegistryError, load_registry

    try:
        load_registry(path)
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (RegistryError, OSError, yaml.YAMLError) as exc:
        fail(str(exc) if path.name in str(exc) else f"{path}: {exc}")
    if not isinstance(data, dict):
        fail(f"{path}:1: not a registry mapping")
    return data


@app.command("simulate")
def simulate(
    sites: int = typer.Option(20, "--sites", min=0, help="Number of simulated sites."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same output)."),
    duration: float = typer.Option(
        3600.0, "--duration", min=0, help="Seconds of event time; 0 = endless (Kafka only)."
    ),
    start: str | None = typer.Option(
        None,
        "--start",
        help=f"Event time of the stream start, RFC 3339 (default {DEFAULT_FILE_START} "
        "for files, now for Kafka).",
    ),
    incident: list[str] = typer.Option(
        [],
        "--incident",
        help="KIND:TARGET@START+DURATION[=MAGNITUDE][:LEVEL], repeatable; "
        "e.g. ramp:HB-WH-0001/CH4-01@600+900.",
    ),
    registry_in: Path | None = typer.Option(
        None, "--registry", help="Simulate this registry file instead of building one."
    ),
    registry_out: Path | None = typer.Option(
        None, "--registry-out", help="Write the registry here (YAML, or JSON if *.json)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Telemetry JSON lines file (default stdout)."
    ),
    to_kafka: bool = typer.Option(False, "--to-kafka", help="Produce to Kafka instead."),
    bootstrap: str = typer.Option(
        DEFAULT_BOOTSTRAP, "--bootstrap", envvar="EWARN_BOOTSTRAP", help="Kafka HOST:PORT."
    ),
    topic: str = typer.Option(
        "ew.telemetry", "--topic", envvar="EWARN_TOPIC_TELEMETRY", help="Telemetry topic."
    ),
    realtime: bool = typer.Option(False, "--realtime", help="Pace at event time (speed 1)."),
    speed: float | None = typer.Option(
        None, "--speed", min=0.0, help="Pace at SPEED x event time (Kafka only)."
    ),
) -> None:
    """Simulate coal-mine, chemical and construction sites with injectable incidents.

    File output runs as fast as possible; Kafka output can be paced with
    ``--realtime`` or ``--speed``. Incident times are seconds after --start.
    """
    incidents: list[Incident] = []
    for spec in incident:
        try:
            incidents.append(parse_incident(spec))
        except ValueError as exc:
            fail(f"--incident: {exc}")
    if duration == 0 and not to_kafka:
        fail("--duration 0 (endless) needs --to-kafka")
    if registry_in is not None:
        registry = _load_registry_file(registry_in)
    else:
        registry = build_registry(sites, seed)
    if start is None:
        start_ms = (
            int(datetime.now(tz=UTC).timestamp()) * 1000
            if to_kafka
            else parse_rfc3339(DEFAULT_FILE_START)
        )
    else:
        try:
            start_ms = parse_rfc3339(start)
        except ValueError as exc:
            fail(f"--start: {exc}")

    if registry_out is not None:
        registry_out.parent.mkdir(parents=True, exist_ok=True)
        if registry_out.suffix.lower() == ".json":
            registry_out.write_text(json.dumps(registry, indent=2) + "\n", encoding="utf-8")
        else:
            registry_out.write_text(
                yaml.safe_dump(registry, sort_keys=False, allow_unicode=True, width=100),
                encoding="utf-8",
            )

    records = generate(registry, start_ms, duration or None, incidents, seed)
    if to_kafka:
        from pipeline import kafka_io

        pace = speed if speed is not None else (1.0 if realtime else None)
        try:
            count = kafka_io.produce_paced(records, topic, bootstrap, pace)
        except Exception as exc:  # broker down and the like: one line, non-zero
            fail(f"cannot produce to {bootstrap}/{topic}: {exc}")
        typer.echo(f"produced {count} readings to {topic}", err=True)
        return
    count = 0
    with _open_out(out) as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")))
            fh.write("\n")
            count += 1
    typer.echo(f"wrote {count} readings of {len(registry.get('sensors', []))} sensors", err=True)
