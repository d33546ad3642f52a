from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.timeutil import parse_rfc3339, to_rfc3339


def test_offsets_are_honoured() -> None:
    utc = parse_rfc3339("2026-11-28T08:00:00Z")
    assert utc == int(datetime(2026, 11, 28, 8, tzinfo=UTC).timestamp() * 1000)
    assert parse_rfc3339("2026-11-28T16:00:00+08:00") == utc
    assert parse_rfc3339("2026-11-28T08:00:00.250Z") == utc + 250


@pytest.mark.parametrize("bad", ["2026-11-28T08:00:00", "yesterday", "2026-13-01T00:00:00Z", ""])
def test_rejects_missing_offset_and_garbage(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339(bad)


@given(st.integers(min_value=0, max_value=4_102_444_800_000))
def test_round_trip(ms: int) -> None:
    assert parse_rfc3339(to_rfc3339(ms)) == ms
