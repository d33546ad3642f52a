"""Event-time helpers: the core speaks epoch milliseconds, the wire speaks RFC 3339."""

from __future__ import annotations

from datetime import UTC, datetime


def to_rfc3339(ms: int) -> str:
    """Format epoch milliseconds as RFC 3339 UTC with millisecond precision.

    >>> to_rfc3339(1795852800000)
    '2026-11-28T08:00:00.000Z'
    """
    dt = datetime.fromtimestamp(ms / 1000.0, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_rfc3339(text: str) -> int:
    """Parse an RFC 3339 timestamp (with offset or ``Z``) into epoch milliseconds.

    Raises ``ValueError`` for anything without an explicit offset: event time
    must never depend on the local zone of the machine that replays it.
    """
    if not isinstance(text, str) or len(text) < 20 or len(text) > 40:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    if "T" not in text and "t" not in text and " " not in text:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    normalised = text[:-1] + "+00:00" if text[-1] in "Zz" else text
    dt = datetime.fromisoformat(normalised)
    if dt.tzinfo is None:
        raise ValueError(f"timestamp has no UTC offset: {text!r}")
    return round(dt.timestamp() * 1000)
