"""Log hygiene for the worker: a repeated message is written once per window.

Why: while the broker is unreachable, aiokafka retries its metadata request in a
tight loop and logs every failed attempt ("Unable connect to node ...": measured
~8,700 lines per second during a 20 s broker restart, 194,000 lines). A long outage
would fill the disk and bury the one line an ops engineer needs. The filter keeps the
first occurrence of each message, drops its repeats for ``window_s`` and says how
many it dropped when the message next gets through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

#: Distinct messages remembered at most; beyond it, entries older than the window go.
MAX_KEYS = 1000


class RepeatFilter(logging.Filter):
    """Lets each (logger, level, message template) through at most once per window."""

    def __init__(
        self, window_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}  # -> (shown at, dropped)
        # one filter serves every handler of a logger: the same record reaches it once
        # per handler and must get the same answer each time
        self._last: tuple[logging.LogRecord | None, bool] = (None, True)

    def filter(self, record: logging.LogRecord) -> bool:
        if record is self._last[0]:
            return self._last[1]
        keep = self._decide(record)
        self._last = (record, keep)
        return keep

    def _decide(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        shown = self._seen.get(key)
        if shown is not None and now - shown[0] < self.window_s:
            self._seen[key] = (shown[0], shown[1] + 1)
            return False
        if shown is not None and shown[1]:
            record.msg = (f"{record.getMessage()} [repeated {shown[1]} more times in the "
                          f"last {now - shown[0]:.0f} s, not logged]")
            record.args = ()
        self._seen[key] = (now, 0)
        if len(self._seen) > MAX_KEYS:
            self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.window_s}
        return True


def quiet_repeats(logger: logging.Logger, window_s: float = 30.0) -> RepeatFilter:
    """Install one ``RepeatFilter`` on every handler of ``logger`` (handlers see the
    records that propagate from child loggers such as ``aiokafka.client``)."""
    repeat = RepeatFilter(window_s)
    for handler in logger.handlers:
        handler.addFilter(repeat)
    return repeat
