"""``ewarn validate``: run the ingest validator over a JSON-lines file and summarise.

Same ``Validator`` as the ingest agent. Source positions of file records are
``file:<name>``, partition 0, offset = 1-based line number; completely empty
lines are skipped (see ``pipeline.jsonl``). The event-time watermark is the
largest accepted ``ts`` so far, as in the stream.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from pipeline.cli._app import app, fail
from pipeline.jsonl import iter_lines
from pipeline.model import Reading, SourcePosition
from pipeline.registry import RegistryError, load_registry
from pipeline.validation import REASON_CODES, ValidationParams, Validator, validate_stream


def _now_ms(now: str | None) -> int:
    if now is None:
        return time.time_ns() // 1_000_000  # the CLI is an edge: the wall clock is allowed here
    if now.isdigit():
        return int(now)
    from pipeline.validation import parse_timestamp

    try:
        return parse_timestamp(now)
    except ValueError as exc:
        fail(f"--now: {exc}")


@app.command("validate")
def validate(
    registry: Annotated[Path, typer.Option("--registry", help="Registry file (YAML or JSON).")],
    input_path: Annotated[
        Path, typer.Option("--input", help="Telemetry, one JSON value per line.")
    ],
    deadletter: Annotated[
        Path | None, typer.Option("--deadletter", help="Write dead letters here (JSON lines).")
    ] = None,
    now: Annotated[
        str | None,
        typer.Option("--now", help="Wall clock for the future-timestamp check (RFC 3339 or ms)."),
    ] = None,
    max_bytes: Annotated[int, typer.Option(help="Largest accepted record.")] = 1_048_576,
    future_tolerance_s: Annotated[
        float, typer.Option(help="How far ahead of max(now, watermark) ts may be.")
    ] = 3600.0,
) -> None:
    """Validate telemetry against the contract and the registry; print accepted/rejected counts."""
    now_ms = _now_ms(now)
    try:
        reg = load_registry(registry)
    except RegistryError as exc:
        fail(str(exc))
    try:
        with open(input_path, "rb"):
            pass
    except OSError as exc:
        fail(f"{input_path}: cannot read: {exc.strerror or exc}")
    params = ValidationParams(
        max_bytes=max_bytes, future_tolerance_ms=int(future_tolerance_s * 1000)
    )
    validator = Validator(reg, params)
    topic = f"file:{input_path.name}"
    records = (
        (raw, None, SourcePosition(topic, 0, line_no)) for line_no, raw in iter_lines(input_path)
    )
    counts: Counter[str] = Counter()
    accepted = 0
    try:
        out = open(deadletter, "wb") if deadletter is not None else None  # noqa: SIM115
    except OSError as exc:
        fail(f"{deadletter}: cannot write: {exc.strerror or exc}")
    try:
        for result in validate_stream(validator, records, now_ms):
            if isinstance(result, Reading):
                accepted += 1
                continue
            counts[result.reason] += 1
            if out is not None:
                out.write(orjson.dumps(result.to_dict()) + b"\n")
    except OSError as exc:
        fail(f"{input_path}: read/write failed: {exc.strerror or exc}")
    finally:
        if out is not None:
            out.close()
    _summary(input_path.name, accepted, counts)


def _summary(name: str, accepted: int, counts: Counter[str]) -> None:
    rejected = sum(counts.values())
    table = Table(title=f"ewarn validate: {name}")
    table.add_column("outcome")
    table.add_column("records", justify="right")
    table.add_row("accepted", str(accepted))
    for reason in REASON_CODES:
        if counts[reason]:
            table.add_row(f"rejected: {reason}", str(counts[reason]))
    table.add_row("rejected (total)", str(rejected), style="bold")
    table.add_row("input records", str(accepted + rejected), style="bold")
    Console(width=100).print(table)
