"""Kafka-facing commands: ``topics create``, ``registry publish``, ``record``, ``replay``.

Every command takes ``--bootstrap HOST:PORT`` (default ``$EWARN_BOOTSTRAP``, then
``127.0.0.1:9092``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from kafka.errors import KafkaError
from rich.console import Console

from pipeline.cli._app import app, fail
from pipeline.settings import DEFAULT_BOOTSTRAP, Settings
from pipeline.timeutil import parse_rfc3339

console = Console(stderr=True)

BootstrapOption = typer.Option(
    DEFAULT_BOOTSTRAP, "--bootstrap", envvar="EWARN_BOOTSTRAP", help="Kafka HOST:PORT."
)

topics_app = typer.Typer(help="Manage ewarn's Kafka topics.")
registry_app = typer.Typer(help="The site and sensor registry on Kafka.")
app.add_typer(topics_app, name="topics")
app.add_typer(registry_app, name="registry")


@topics_app.command("create")
def topics_create(
    bootstrap: str = BootstrapOption,
    partitions: int = typer.Option(0, help="Partitions for keyed topics (0 = settings)."),
) -> None:
    """Create every external topic with its partitions and configs (idempotent)."""
    from pipeline import kafka_io

    settings = Settings.from_env(bootstrap=bootstrap, partitions=partitions or None)
    try:
        result = kafka_io.create_topics(bootstrap, kafka_io.topic_specs(settings))
    except (KafkaError, TimeoutError) as exc:
        fail(f"cannot create topics on {bootstrap}: {exc}")
    for name, state in result.items():
        typer.echo(f"{name}\t{state}")


@registry_app.command("publish")
def registry_publish(
    registry: Path = typer.Argument(..., help="Registry file (YAML or JSON)."),
    bootstrap: str = BootstrapOption,
) -> None:
    """Publish a registry file to the compacted ``ew.registry`` topic."""
    from pipeline import kafka_io
    from pipeline.registry import RegistryError, load_registry

    try:
        reg = load_registry(registry)
    except (RegistryError, OSError) as exc:
        fail(str(exc))
    settings = Settings.from_env(bootstrap=bootstrap)
    try:
        n = kafka_io.publish_registry(bootstrap, settings.topics.registry, reg)
    except KafkaError as exc:
        fail(f"cannot publish to {bootstrap}: {exc}")
    typer.echo(f"published {n} records ({len(reg.sites)} sites, {len(reg.sensors)} sensors)")


@app.command("record")
def record_cmd(
    topic: str = typer.Option(..., "--topic", help="Topic to copy."),
    out: Path = typer.Option(..., "--out", help="JSON-lines file to write ('-' = stdout)."),
    bootstrap: str = BootstrapOption,
    follow: bool = typer.Option(False, help="Keep going until idle for --idle seconds."),
    idle: float = typer.Option(5.0, help="With --follow: stop after this many idle seconds."),
    max_records: int = typer.Option(0, help="Stop after N records (0 = no limit)."),
) -> None:
    """Copy a topic to JSON lines (key, value, timestamp, headers, partition, offset)."""
    from pipeline import kafka_io

    try:
        if str(out) == "-":
            n = kafka_io.record(bootstrap, topic, sys.stdout.buffer, idle, max_records or None,
                                follow)
        else:
            with out.open("wb") as fh:
                n = kafka_io.record(bootstrap, topic, fh, idle, max_records or None, follow)
    except (ValueError, KafkaError, OSError) as exc:
        fail(str(exc))
    console.print(f"recorded {n} records from {topic}")


def _parse_time(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    try:
        return int(text) if text.isdigit() else parse_rfc3339(text)
    except ValueError:
        fail(f"{what}: not an RFC 3339 time or epoch ms: {text!r}")


@app.command("replay")
def replay_cmd(
    file: Path = typer.Argument(..., help="A recorded file, or plain telemetry JSON lines."),
    topic: str = typer.Option("ew.telemetry", "--topic", help="Topic to write to."),
    bootstrap: str = BootstrapOption,
    speed: float = typer.Option(0.0, help="0 = as fast as possible, 1 = original pace, N = xN."),
    start: str | None = typer.Option(None, help="Only records at or after this event time."),
    end: str | None = typer.Option(None, help="Only records before this event time."),
    keep_partition: bool = typer.Option(False, help="Write to the recorded partition."),
) -> None:
    """Replay a file into a topic (plain telemetry lines are keyed by sensor_id)."""
    from pipeline import kafka_io

    if not file.is_file():
        fail(f"{file}: no such file")
    start_ms, end_ms = _parse_time(start, "--start"), _parse_time(end, "--end")
    try:
        n = kafka_io.replay(
            bootstrap, kafka_io.replay_items(kafka_io.open_lines(file)), topic,
            speed=speed or None, start_ms=start_ms, end_ms=end_ms, keep_partition=keep_partition,
        )
    except (KafkaError, OSError) as exc:
        fail(str(exc))
    console.print(f"replayed {n} records into {topic}")
