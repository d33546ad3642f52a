"""The operator board folds alert events with at-least-once repeats."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from pipeline.cli.console import event_line, render_board
from pipeline.opsview import Board


def ev(alert_id: str, seq: int, event: str, level: str | None, site: str = "S1",
       **extra: Any) -> dict[str, Any]:
    return {"alert_id": alert_id, "seq": seq, "event": event, "level": level, "site_id": site,
            "kind": "threshold", "message": f"{alert_id} {event}", "ts": "2026-11-28T08:00:00Z",
            "tier": extra.pop("tier", 0), "evidence": extra}


def test_repeats_are_dropped_by_alert_id_and_seq() -> None:
    board = Board()
    assert board.apply(ev("a", 1, "opened", "yellow"))
    assert not board.apply(ev("a", 1, "opened", "yellow"))
    assert board.duplicates == 1
    assert board.events == 1


def test_lifecycle_moves_alert_through_board_and_hidden_danger_list() -> None:
    board = Board()
    board.apply(ev("a", 1, "opened", "yellow"))
    board.apply(ev("b", 1, "opened", "blue", site="S2"))
    assert board.counts_by_level() == {"yellow": 1, "blue": 1}
    assert board.hidden_dangers() == []
    board.apply(ev("a", 2, "updated", "orange"))
    assert [a.alert_id for a in board.hidden_dangers()] == ["a"]
    board.apply(ev("a", 3, "resolved", "orange"))
    assert [a.alert_id for a in board.active_alerts()] == ["b"]
    # Resolved but not closed: still a hidden danger until verified and closed.
    assert [a.alert_id for a in board.hidden_dangers()] == ["a"]
    board.apply(ev("a", 4, "closed", "orange"))
    assert board.hidden_dangers() == []
    assert list(board.by_site()) == ["S2"]


def test_late_older_event_does_not_overwrite_newer_state() -> None:
    board = Board()
    board.apply(ev("a", 2, "escalated", "red", tier=1))
    board.apply(ev("a", 1, "opened", "red"))
    assert board.alerts["a"].state == "escalated"
    assert board.alerts["a"].tier == 1


def test_rendering_shows_levels_sites_and_hidden_dangers() -> None:
    board = Board()
    board.apply(ev("HB-1/CH4:threshold:1", 1, "opened", "red", site="HB-1"))
    board.apply(ev("HB-2/O2:threshold:2", 1, "opened", "yellow", site="HB-2", notify=False))
    console = Console(record=True, width=200)
    console.print(render_board(board))
    text = console.export_text()
    assert "red 1" in text and "yellow 1" in text and "hidden dangers 1" in text
    assert text.index("HB-1") < text.index("HB-2")  # most severe site first
    line = event_line(ev("x", 1, "escalated", "orange", tier=2, notify=False))
    assert "ORANGE" in line.plain and "T2" in line.plain and "grouped/silenced" in line.plain
    styles = {str(span.style) for span in line.spans}
    assert "bold dark_orange" in styles
