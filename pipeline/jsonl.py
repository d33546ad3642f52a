"""Reading JSON-lines files as raw bytes, for the offline commands.

Lines are yielded as bytes, not text, so that a line that is not valid UTF-8
still reaches the validator and ends as a dead letter (conservation) instead of
crashing the reader. Only completely empty lines (zero bytes between two
newlines, e.g. a trailing blank line) are skipped: they carry no record. A
line of only whitespace is a record and is rejected as ``malformed_json``.
The trailing ``\\n`` is removed; a ``\\r`` before it is kept (JSON treats it
as whitespace, and the dead letter keeps the bytes exactly).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def iter_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, raw_bytes)`` for each non-empty line; numbers are 1-based.

    Raises ``OSError`` if the file cannot be opened or read.

    >>> # for lineno, raw in iter_lines("in.jsonl"): validator.validate(raw, None, ...)
    """
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            raw = line[:-1] if line.endswith(b"\n") else line
            if raw:
                yield lineno, raw
