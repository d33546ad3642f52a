"""``ewarn worker``: run the streaming pipeline (Faust) against a Kafka cluster."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import typer

from pipeline.cli._app import app, fail
from pipeline.cli.kafka import BootstrapOption
from pipeline.settings import Settings


def port_free(host: str, port: int) -> bool:
    """Whether a server could bind ``host:port`` now (same options as the servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@app.command("worker")
def worker(
    bootstrap: str = BootstrapOption,
    registry: Path | None = typer.Option(
        None, "--registry", help="Registry file: published to ew.registry before starting."
    ),
    web_port: int = typer.Option(0, "--web-port", help="Faust web port (default 6066)."),
    metrics_port: int = typer.Option(-1, "--metrics-port",
                                     help="Prometheus /metrics port (default 9100, 0 = off)."),
    app_id: str = typer.Option("", "--app-id", help="Consumer group / app id (default ewarn)."),
    partitions: int = typer.Option(0, help="Partitions of internal topics (default 4)."),
    state_dir: str = typer.Option("", help="Faust data directory."),
    loglevel: str = typer.Option("warning", envvar="EWARN_LOGLEVEL", help="Log level."),
) -> None:
    """Consume telemetry, detect, run the alert lifecycle, publish alerts and metrics."""
    from pipeline import kafka_io
    from pipeline.registry import RegistryError, load_registry

    settings = Settings.from_env(
        bootstrap=bootstrap, web_port=web_port or None,
        metrics_port=metrics_port if metrics_port >= 0 else None,
        app_id=app_id or None, partitions=partitions or None, state_dir=state_dir or None,
    )
    # Both servers bind only once the worker runs: a port in use would end it with a
    # traceback after the Kafka set-up. Say so first, with the option that changes it.
    for what, host, port, option in (
        ("metrics", settings.metrics_host, settings.metrics_port, "--metrics-port"),
        ("web", settings.web_host, settings.web_port, "--web-port"),
    ):
        if port and not port_free(host, port):
            fail(f"the {what} port {host}:{port} is in use: choose another with {option}")
    logging.basicConfig(level=loglevel.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        kafka_io.create_topics(settings.bootstrap, kafka_io.topic_specs(settings))
        if registry is not None:
            reg = load_registry(registry)
            kafka_io.publish_registry(settings.bootstrap, settings.topics.registry, reg)
        else:
            reg = kafka_io.read_registry(settings.bootstrap, settings.topics.registry)
        sources = kafka_io.partition_count(settings.bootstrap, settings.topics.telemetry)
    except (RegistryError, OSError) as exc:
        fail(str(exc))
    except Exception as exc:  # broker unreachable and the like: one line, non-zero
        fail(f"cannot prepare Kafka at {settings.bootstrap}: {exc}")

    from agents.worker import run_worker

    run_worker(settings, reg, loglevel, sources)
