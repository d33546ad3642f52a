"""``ewarn detect``: ingestion, detection and the alert lifecycle over files, no Kafka.

The same ``Validator`` and ``Engine`` as the streaming agents. Telemetry lines are
read in arrival order (source topic ``file:<name>``, partition 0, offset = line
number); operator dispositions from ``--dispositions`` are merged in by their ``at``
time: one is applied as soon as the event-time watermark reaches it.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import orjson
import typer
from rich.console import Console
from rich.table import Table

from pipeline.cli._app import app, fail
from pipeline.model import DeadLetter, Disposition, SourcePosition
from pipeline.timeutil import parse_rfc3339, to_rfc3339


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _dump(fh: BinaryIO, obj: dict[str, Any]) -> None:
    fh.write(orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE))


def _read_jsonl(path: Path, what: str) -> list[tuple[int, bytes]]:
    from pipeline.jsonl import iter_lines

    try:
        return list(iter_lines(path))
    except OSError as exc:
        fail(f"cannot read {what} file {path}: {exc.strerror or exc}")


def _load_silences(path: Path) -> list[Any]:
    from pipeline.alerts.params import Silence

    out = []
    for line_no, raw in _read_jsonl(path, "silences"):
        try:
            obj = orjson.loads(raw)
            if not isinstance(obj, dict):
                raise ValueError("a silence must be a JSON object")
            out.append(Silence.from_dict(obj))
        except (orjson.JSONDecodeError, ValueError) as exc:
            fail(f"{path}:{line_no}: bad silence: {exc}")
    return out


def _load_dispositions(
    path: Path, now_ms: int
) -> tuple[list[Disposition], list[tuple[int, str, str]]]:
    """Valid dispositions sorted by (at, line) and rejections as (line, reason, detail)."""
    from pipeline.validation import parse_disposition

    good: list[tuple[int, int, Disposition]] = []
    bad: list[tuple[int, str, str]] = []
    for line_no, raw in _read_jsonl(path, "dispositions"):
        result = parse_disposition(raw, now_ms)
        if isinstance(result, Disposition):
            good.append((result.at, line_no, result))
            continue
        detail = str(getattr(result, "detail", ""))
        reason = str(result)
        if reason == "schema_violation" and ("field by" in detail or detail.startswith("by ")):
            reason = "missing_by"
        bad.append((line_no, reason, detail))
    good.sort(key=lambda t: (t[0], t[1]))
    return [d for _, _, d in good], bad


@app.command("detect")
def detect(
    registry: Annotated[Path, typer.Option("--registry", help="Site/sensor registry (YAML/JSON).")],
    input_path: Annotated[Path, typer.Option("--input", help="Telemetry JSON lines.")],
    alerts_path: Annotated[Path, typer.Option("--alerts", help="Alert events out (JSONL).")],
    deadletter_path: Annotated[Path, typer.Option("--deadletter", help="Dead letters out.")],
    dispositions: Annotated[
        Path | None, typer.Option("--dispositions", help="Operator dispositions (JSONL).")
    ] = None,
    silences: Annotated[
        Path | None, typer.Option("--silences", help="Maintenance windows (JSONL).")
    ] = None,
    risk_path: Annotated[
        Path | None, typer.Option("--risk", help="Site/region risk events out (JSONL).")
    ] = None,
    now: Annotated[
        str | None, typer.Option("--now", help="Wall clock for validation (RFC 3339).")
    ] = None,
) -> None:
    """Run ingestion, detection and the alert lifecycle over a telemetry file."""
    from pipeline.alerts.risk import RegionRollup
    from pipeline.engine import Engine, EngineOutput
    from pipeline.registry import load_registry
    from pipeline.validation import Validator

    if now is not None:
        try:
            now_ms = parse_rfc3339(now)
        except ValueError as exc:
            fail(f"--now: {exc}")
    else:
        now_ms = _wall_ms()
    if not registry.is_file():
        fail(f"registry file not found: {registry}")
    if not input_path.is_file():
        fail(f"input file not found: {input_path}")
    try:
        reg = load_registry(registry)
    except Exception as exc:  # any loader error is a bad registry: one line, exit 2
        fail(f"bad registry {registry}: {exc}")
    silence_list = _load_silences(silences) if silences is not None else []
    pending, bad_disp = (
        _load_dispositions(dispositions, now_ms) if dispositions is not None else ([], [])
    )

    engine = Engine(reg, region_rollup=RegionRollup(), silences=silence_list)
    validator = Validator(reg)
    topic = f"file:{input_path.name}"
    accepted = 0
    dead: Counter[str] = Counter()
    events: Counter[tuple[str, str]] = Counter()
    rejected: Counter[str] = Counter()
    for _, reason, _ in bad_disp:
        rejected[reason] += 1
    applied = 0
    n_risk = 0
    next_disp = 0

    try:
        alerts_fh = open(alerts_path, "wb")  # noqa: SIM115 (closed in finally)
        dl_fh = open(deadletter_path, "wb")  # noqa: SIM115
        risk_fh = open(risk_path, "wb") if risk_path is not None else None  # noqa: SIM115
    except OSError as exc:
        fail(f"cannot write output: {exc}")

    def emit(out: EngineOutput) -> None:
        nonlocal n_risk
        stamp = _wall_ms()
        for ev in out.alerts:
            events[(ev.kind, ev.event)] += 1
            _dump(alerts_fh, replace(ev, emitted_at=stamp).to_dict())
        for r in out.risks:
            n_risk += 1
            if risk_fh is not None:
                _dump(risk_fh, r)
        for _, reason in out.rejected:
            rejected[reason] += 1

    def apply_dispositions(upto: int) -> None:
        nonlocal next_disp, applied
        while next_disp < len(pending) and pending[next_disp].at <= upto:
            out = engine.on_disposition(pending[next_disp])
            applied += 0 if out.rejected else 1
            emit(out)
            next_disp += 1

    try:
        for line_no, raw in _read_jsonl(input_path, "input"):
            source = SourcePosition(topic, 0, line_no)
            result = validator.validate(raw, None, source, now_ms, engine.watermark_ms)
            if isinstance(result, DeadLetter):
                dead[result.reason] += 1
                _dump(dl_fh, result.to_dict())
                continue
            accepted += 1
            wm = engine.watermark_ms
            apply_dispositions(result.ts if wm is None else max(wm, result.ts))
            emit(engine.on_reading(result))
        if engine.watermark_ms is not None:
            apply_dispositions(engine.watermark_ms)
            emit(engine.on_watermark(engine.watermark_ms))
    finally:
        alerts_fh.close()
        dl_fh.close()
        if risk_fh is not None:
            risk_fh.close()

    _summary(
        accepted,
        dead,
        events,
        applied,
        rejected,
        len(pending) - next_disp,
        n_risk,
        engine.watermark_ms,
        len(engine.hidden_dangers.query(engine.watermark_ms or 0)),
    )


def _summary(
    accepted: int,
    dead: Counter[str],
    events: Counter[tuple[str, str]],
    applied: int,
    rejected: Counter[str],
    not_reached: int,
    n_risk: int,
    watermark: int | None,
    hidden: int,
) -> None:
    console = Console()
    total = accepted + sum(dead.values())
    console.print(
        f"[bold]{total}[/] records: [green]{accepted} readings accepted[/], "
        f"[yellow]{sum(dead.values())} dead letters[/]; watermark "
        f"{to_rfc3339(watermark) if watermark is not None else '-'}",
        highlight=False,
    )
    if dead:
        table = Table(title="dead letters by reason")
        table.add_column("reason")
        table.add_column("count", justify="right")
        for reason, n in sorted(dead.items()):
            table.add_row(reason, str(n))
        console.print(table)
    if events:
        names = ("opened", "updated", "escalated", "acknowledged", "resolved", "closed")
        table = Table(title=f"{sum(events.values())} alert events by kind / event")
        table.add_column("kind")
        for name in names:
            table.add_column(name, justify="right")
        for kind in sorted({k for k, _ in events}):
            table.add_row(kind, *(str(events.get((kind, n), 0) or "") for n in names))
        console.print(table)
    else:
        console.print("no alert events")
    if applied or rejected or not_reached:
        rej = ", ".join(f"{r} {n}" for r, n in sorted(rejected.items())) or "none"
        console.print(
            f"dispositions: {applied} applied; rejected: {rej}; "
            f"{not_reached} after the last event time (not applied)",
            highlight=False,
        )
    console.print(f"{n_risk} risk events; {hidden} alerts on the hidden-danger list")
