"""Property tests: invariants of the book under random findings, dispositions and ticks."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.alerts.book import SiteBook
from pipeline.findings import Finding
from pipeline.model import LEVELS, Disposition
from tests.unit.alerts.helpers import CH4, CH4B, O2, T0, book

SENSORS = (CH4, CH4B, O2)
KINDS = ("threshold", "forecast", "fault")
ACTIONS = ("acknowledge", "dispatch", "rectify", "verify", "close", "comment")

op = st.one_of(
    st.tuples(
        st.just("f"),
        st.integers(1, 4000),
        st.sampled_from(SENSORS),
        st.sampled_from(KINDS),
        st.booleans(),
        st.sampled_from(LEVELS),
    ),
    st.tuples(
        st.just("d"),
        st.integers(1, 4000),
        st.sampled_from(ACTIONS),
        st.integers(0, 10),
        st.booleans(),
    ),
    st.tuples(st.just("t"), st.integers(1, 90_000)),
)


def play(ops: list[tuple[Any, ...]], roundtrip: bool) -> list[dict[str, Any]]:
    data: dict[str, Any] | None = None
    t = T0
    out: list[dict[str, Any]] = []
    ids: list[str] = []
    for o in ops:
        t += o[1] * 1000
        b: SiteBook = book(data)
        if o[0] == "f":
            _, _, sensor, kind, active, level = o
            b.apply_finding(Finding(sensor, kind, active, t, level, 1.0, 1.0), "ch4")
        elif o[0] == "d":
            _, _, action, idx, by = o
            aid = ids[idx % len(ids)] if ids else "none:threshold:1"
            b.apply_disposition(Disposition(aid, action, "op" if by else "", t))
        else:
            b.fire_due(t)
        for e in b.events:
            if e.alert_id not in ids:
                ids.append(e.alert_id)
        out.extend(e.to_dict() for e in b.events)
        data = json.loads(json.dumps(b.d)) if roundtrip else b.d
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(op, max_size=40))
def test_book_invariants_and_json_roundtrip(ops: list[tuple[Any, ...]]) -> None:
    events = play(ops, roundtrip=False)
    assert events == play(ops, roundtrip=True)
    by_id: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_id.setdefault(e["alert_id"], []).append(e)
    for aid, evs in by_id.items():
        assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1)), aid
        assert evs[0]["event"] == "opened"
        names = [e["event"] for e in evs]
        if "closed" in names:
            assert names.index("resolved") < names.index("closed")
            assert names[-1] == "closed"
        assert names.count("acknowledged") <= 1
        assert names.count("resolved") <= 1
        tiers = [e["tier"] for e in evs]
        assert tiers == sorted(tiers) and max(tiers) <= 3
        stamps = [e["ts"] for e in evs]
        assert stamps == sorted(stamps)
        if "acknowledged" in names:  # no unacknowledged-escalation after an ack
            after = evs[names.index("acknowledged") :]
            assert all(e["evidence"].get("reason") != "unacknowledged" for e in after)
        for e in evs:
            assert isinstance(e["evidence"]["notify"], bool)
