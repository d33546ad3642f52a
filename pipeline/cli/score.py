"""``ewarn score``: the anomaly scorer alone over a univariate CSV (NAB format)."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli._app import app, fail
from pipeline.detect.anomaly import AnomalyScorer
from pipeline.timeutil import parse_rfc3339


def parse_timestamp(text: str) -> int:
    """Epoch ms from NAB's ``2014-04-01 00:00:00`` (UTC), RFC 3339, or integer epoch ms."""
    t = text.strip()
    if t.lstrip("-").isdigit():
        return int(t)
    try:
        return parse_rfc3339(t)
    except ValueError:
        dt = datetime.strptime(t, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        return int(dt.timestamp()) * 1000


@app.command("score")
def score(
    input: Annotated[Path, typer.Option("--input", help="CSV with timestamp,value columns")],
    output: Annotated[Path, typer.Option("--output", help="CSV timestamp,value,anomaly_score")],
) -> None:
    """Score a univariate series row by row, causally; scores in [0, 1]."""
    try:
        fh = open(input, newline="", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        fail(f"{input}: cannot read: {exc.strerror}")
    rows: list[tuple[str, str, float]] = []
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            if header is None:
                fail(f"{input}:1: empty file (expected header timestamp,value)")
            cols = [h.strip() for h in header]
            if "timestamp" not in cols or "value" not in cols:
                fail(f"{input}:1: header must have timestamp and value columns, got {header}")
            it, iv = cols.index("timestamp"), cols.index("value")
            for row in reader:
                line = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(cols):
                    fail(f"{input}:{line}: expected {len(cols)} fields, got {len(row)}")
                try:
                    parse_timestamp(row[it])
                except ValueError:
                    fail(f"{input}:{line}: bad timestamp {row[it]!r}")
                try:
                    x = float(row[iv])
                except ValueError:
                    fail(f"{input}:{line}: bad value {row[iv]!r}")
                if not math.isfinite(x):
                    fail(f"{input}:{line}: non-finite value {row[iv]!r}")
                rows.append((row[it], row[iv], x))
        except (csv.Error, UnicodeDecodeError) as exc:
            fail(f"{input}:{reader.line_num}: unreadable CSV: {exc}")
    scorer = AnomalyScorer()
    try:
        with open(output, "w", newline="", encoding="utf-8") as out:
            w = csv.writer(out, lineterminator="\n")
            w.writerow(["timestamp", "value", "anomaly_score"])
            for ts_text, v_text, x in rows:
                s = scorer.score_one(0, x)
                w.writerow([ts_text, v_text, repr(min(max(s, 0.0), 1.0))])
    except OSError as exc:
        fail(f"{output}: cannot write: {exc.strerror}")
