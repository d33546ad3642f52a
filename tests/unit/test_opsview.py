"""The operator board folds alert events with at-least-once repeats."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from pipeline.cli.console import event_line, render_board
from pipeline.opsview import AlertFilter, Board


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


def routed(site: str, level: str | None, kind: str = "threshold", territory: tuple[str, ...] = (
        "Hubei", "Wuhan", "Jiangxia"), notify: bool = True) -> dict[str, Any]:
    event = ev(f"{site}/X:{kind}:1", 1, "opened", level, site=site, notify=notify)
    event["kind"] = kind
    event["responsible"] = {"enterprise": "E", "regulator": "R", "territory": list(territory)}
    return event


def test_filter_follows_a_territory_by_prefix_of_its_chain() -> None:
    wuhan = AlertFilter.parse("Hubei/Wuhan")
    assert wuhan.matches(routed("S1", "blue"))
    assert not wuhan.matches(routed("S2", "red", territory=("Hubei", "Yichang", "Xiling")))
    assert not wuhan.matches(routed("S3", "red", territory=("Hunan", "Wuhan", "X")))
    assert not wuhan.matches(ev("a", 1, "opened", "red"))  # no responsible: not theirs
    assert AlertFilter.parse("Hubei/Wuhan/Jiangxia").matches(routed("S1", "blue"))
    assert AlertFilter().matches(ev("a", 1, "opened", None))  # no filter: everything


def test_filter_by_level_site_kind_and_notification() -> None:
    assert [AlertFilter.parse(min_level="orange").matches(routed("S", lvl))
            for lvl in ("blue", "yellow", "orange", "red", None)] == [
        False, False, True, True, False]
    sites = AlertFilter.parse(sites=["S1", "S2"])
    assert sites.matches(routed("S2", "blue")) and not sites.matches(routed("S3", "red"))
    stale = AlertFilter.parse(kinds=["stale"])
    assert stale.matches(routed("S", "yellow", kind="stale"))
    assert not stale.matches(routed("S", "yellow"))
    quiet = AlertFilter.parse(notify_only=True)
    assert quiet.matches(routed("S", "red")) and not quiet.matches(routed("S", "red", notify=False))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"min_level": "purple"}, "level 'purple'"),
    ({"kinds": ["gas"]}, "kind 'gas'"),
    ({"territory": "A/B/C/D"}, "at most province/city/county"),
])
def test_filter_refuses_what_it_cannot_match(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AlertFilter.parse(**kwargs)
