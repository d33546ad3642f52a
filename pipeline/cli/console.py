"""The operator console: ``ewarn tail`` and the disposition commands.

``tail`` follows ``ew.warnings`` and shows every new event as a coloured line plus a
board of open alerts grouped by site and the hidden-danger list. ``ack``,
``dispatch``, ``rectify``, ``verify``, ``close`` and ``comment`` write a
disposition to ``ew.dispositions`` keyed by alert_id.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import typer
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from pipeline.cli._app import app, fail
from pipeline.cli.kafka import BootstrapOption
from pipeline.model import Disposition
from pipeline.opsview import AlertFilter, Board
from pipeline.settings import Settings
from pipeline.timeutil import to_rfc3339

LEVEL_STYLE = {"red": "bold white on red", "orange": "bold dark_orange", "yellow": "yellow",
               "blue": "bright_blue", None: "dim"}
EVENT_STYLE = {"opened": "bold", "escalated": "bold magenta", "resolved": "green",
               "closed": "dim green", "acknowledged": "cyan", "updated": ""}


def event_line(event: dict[str, Any]) -> Text:
    """One event as a coloured line: time, level, event, site, message."""
    level = event.get("level")
    level = level if isinstance(level, str) else None
    line = Text()
    line.append(f"{str(event.get('ts', ''))[:19]} ", style="dim")
    line.append(f"{(level or '-').upper():<6}", style=LEVEL_STYLE.get(level, ""))
    name = str(event.get("event", ""))
    line.append(f" {name:<12}", style=EVENT_STYLE.get(name, ""))
    tier = int(event.get("tier") or 0)
    if tier:
        line.append(f"T{tier} ", style="magenta")
    line.append(f"{event.get('kind', ''):<9} ", style="italic")
    line.append(str(event.get("message", "")))
    if not (event.get("evidence") or {}).get("notify", True):
        line.append("  (grouped/silenced)", style="dim")
    return line


def render_board(board: Board, max_sites: int = 12) -> RenderableType:
    """Open alerts grouped by site, with the hidden-danger list and a summary line."""
    counts = board.counts_by_level()
    summary = Text("Active: ")
    for level in ("red", "orange", "yellow", "blue"):
        summary.append(f"{level} {counts.get(level, 0)}  ", style=LEVEL_STYLE[level])
    summary.append(f"| open (incl. resolved, not closed) {len(board.open_alerts())}  ")
    summary.append(f"| hidden dangers {len(board.hidden_dangers())}", style="bold")

    table = Table(title="Open alerts by site", expand=True, show_lines=False)
    for col in ("site", "level", "kind", "state", "tier", "alert_id"):
        table.add_column(col, overflow="fold")
    for site, alerts in list(board.by_site().items())[:max_sites]:
        for i, alert in enumerate(alerts):
            table.add_row(
                site if i == 0 else "",
                Text((alert.level or "-").upper(), style=LEVEL_STYLE.get(alert.level, "")),
                alert.kind, alert.state, str(alert.tier), alert.alert_id,
            )

    hidden = Table(title="Hidden-danger list (orange/red until verified and closed)", expand=True)
    for col in ("alert_id", "level", "state", "since"):
        hidden.add_column(col, overflow="fold")
    for alert in board.hidden_dangers():
        hidden.add_row(alert.alert_id,
                       Text((alert.level or "-").upper(), style=LEVEL_STYLE.get(alert.level, "")),
                       alert.state, alert.ts)
    return Group(summary, table, hidden)


class BoardPrinter:
    """Prints each new event as a line (repeats dropped) and the board every few seconds."""

    def __init__(self, board: Board, console: Console, board_every: float) -> None:
        self.board, self.console, self.board_every = board, console, board_every
        self.last_board = time.monotonic()

    def __call__(self, event: dict[str, Any]) -> None:
        if self.board.apply(event):
            self.console.print(event_line(event), soft_wrap=True)
        if time.monotonic() - self.last_board > self.board_every:
            self.console.print(render_board(self.board))
            self.last_board = time.monotonic()


def follow_warnings(
    bootstrap: str,
    topic: str,
    on_event: Callable[[dict[str, Any]], None],
    from_beginning: bool = True,
    duration_s: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> None:
    """Consume alert events and hand each decoded dict to ``on_event``."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        # a partition added to the topic later is followed within 10 s, not 5 min
        metadata_max_age_ms=10_000,
    )
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        while not should_stop() and (deadline is None or time.monotonic() < deadline):
            for msgs in consumer.poll(timeout_ms=250).values():
                for msg in msgs:
                    try:
                        on_event(json.loads(msg.value))
                    except ValueError:
                        continue  # not ours to judge: the topic is written by the alert agent
    finally:
        consumer.close()


@app.command("tail")
def tail(
    bootstrap: str = BootstrapOption,
    topic: str = typer.Option("", help="Warnings topic (default from settings)."),
    duration: float = typer.Option(0.0, help="Stop after N seconds (0 = until Ctrl-C)."),
    from_beginning: bool = typer.Option(True, help="Start at the oldest retained event."),
    board_every: float = typer.Option(10.0, help="Print the board every N seconds."),
    territory: str = typer.Option(
        "", help="Only this territory: province, province/city or province/city/county "
        "(e.g. Hubei/Wuhan)."),
    min_level: str | None = typer.Option(
        None, "--min-level", help="Only events at this level or above (blue..red)."),
    site: list[str] = typer.Option([], "--site", help="Only this site (repeatable)."),
    kind: list[str] = typer.Option([], "--kind", help="Only this alert kind (repeatable)."),
    notify_only: bool = typer.Option(
        False, "--notify-only", help="Hide grouped, chattering and silenced events."),
) -> None:
    """Follow ``ew.warnings``: coloured events, open alerts by site, hidden dangers."""
    try:
        wanted = AlertFilter.parse(territory, min_level, site, kind, notify_only)
    except ValueError as exc:
        fail(str(exc))
    settings = Settings.from_env(bootstrap=bootstrap)
    console = Console()
    board = Board()
    printer = BoardPrinter(board, console, board_every)

    def on_event(event: dict[str, Any]) -> None:
        if wanted.matches(event):
            printer(event)

    with contextlib.suppress(KeyboardInterrupt):
        follow_warnings(bootstrap, topic or settings.topics.warnings, on_event, from_beginning,
                        duration or None)
    console.print(render_board(board))


def send_disposition(bootstrap: str, topic: str, disposition: Disposition) -> None:
    from pipeline import kafka_io
    from pipeline.validation import disposition_to_dict

    prod = kafka_io.producer(bootstrap)
    try:
        prod.send(topic, key=disposition.alert_id.encode(),
                  value=json.dumps(disposition_to_dict(disposition)).encode()).get(timeout=30)
    finally:
        prod.close()


def _disposition_command(action: str, doc: str) -> None:
    def command(
        alert_id: str = typer.Argument(..., help="The alert_id to act on."),
        by: str = typer.Option(..., "--by", help="Operator id (who acts)."),
        note: str | None = typer.Option(None, "--note", help="Free text."),
        bootstrap: str = BootstrapOption,
    ) -> None:
        if not by.strip():
            fail("--by must name the operator")
        settings = Settings.from_env(bootstrap=bootstrap)
        disposition = Disposition(alert_id=alert_id, action=action,  # type: ignore[arg-type]
                                  by=by, at=int(time.time() * 1000), note=note)
        try:
            send_disposition(bootstrap, settings.topics.dispositions, disposition)
        except Exception as exc:  # any broker failure: one clear line, non-zero exit
            fail(f"cannot write disposition to {bootstrap}: {exc}")
        typer.echo(f"{action} {alert_id} by {by} at {to_rfc3339(disposition.at)}")

    command.__doc__ = doc
    app.command(action if action != "acknowledge" else "ack")(command)


DISPOSITIONS: Iterable[tuple[str, str]] = (
    ("acknowledge", "Acknowledge an alert (stops its escalation)."),
    ("dispatch", "Record that a crew was dispatched."),
    ("rectify", "Record that the hidden danger was rectified."),
    ("verify", "Record that the rectification was verified."),
    ("close", "Close a resolved alert (hidden dangers: after rectify and verify)."),
    ("comment", "Add a note to an alert."),
)
for _action, _doc in DISPOSITIONS:
    _disposition_command(_action, _doc)
