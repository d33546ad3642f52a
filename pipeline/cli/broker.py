"""``ewarn broker fetch|start|stop|status``: the local Kafka broker for dev, tests and the demo."""

from __future__ import annotations

import typer
from rich.console import Console

from pipeline import broker as local_broker
from pipeline.cli._app import app, fail

broker_app = typer.Typer(help="Run a local single-node Kafka 4.x broker (KRaft) on loopback.")
app.add_typer(broker_app, name="broker")
console = Console(stderr=True)


def _progress(message: str) -> None:
    console.print(f"[dim]{message}[/]")


@broker_app.command("fetch")
def fetch() -> None:
    """Fetch the broker jars from Maven Central into the cache (reused when present)."""
    try:
        path = local_broker.fetch_jars(_progress)
    except local_broker.BrokerError as exc:
        fail(str(exc))
    typer.echo(str(path))


@broker_app.command("start")
def start(
    port: int = typer.Option(0, help="Port to listen on (0 = a free port)."),
) -> None:
    """Start a broker in the background and print its bootstrap address."""
    current = local_broker.load_state()
    if current is not None and local_broker.is_running(current):
        fail(f"a broker is already running (pid {current.pid}) at {current.bootstrap}")
    try:
        info = local_broker.start(port=port or None, progress=_progress)
    except local_broker.BrokerError as exc:
        fail(str(exc))
    local_broker.save_state(info)
    console.print(f"[green]Kafka ready[/] in {info.started_in_s:.1f}s (pid {info.pid})")
    typer.echo(info.bootstrap)


@broker_app.command("stop")
def stop() -> None:
    """Stop the broker started by ``ewarn broker start`` and remove its data."""
    info = local_broker.load_state()
    if info is None:
        fail("no broker recorded (start one with: ewarn broker start)", code=1)
    local_broker.stop(info)
    local_broker.clear_state()
    console.print(f"stopped broker pid {info.pid}")


@broker_app.command("status")
def status() -> None:
    """Print the bootstrap address if the recorded broker is running; exit 1 otherwise."""
    info = local_broker.load_state()
    if info is None or not local_broker.is_running(info):
        console.print("no broker running")
        raise typer.Exit(1)
    typer.echo(f"{info.bootstrap} pid={info.pid} data={info.data_dir}")
