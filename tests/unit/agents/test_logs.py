"""The worker's log writes a repeated message once per window and counts the rest."""

from __future__ import annotations

import logging

from agents.logs import MAX_KEYS, RepeatFilter, quiet_repeats


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def record(msg: str, *args: object, name: str = "aiokafka.client",
           level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_flood_of_one_message_is_written_once_per_window_with_the_count() -> None:
    clock = Clock()
    f = RepeatFilter(window_s=30.0, clock=clock)
    passed = [f.filter(record("Unable connect to node with id %s: %s", 1, "refused"))
              for _ in range(10_000)]
    assert passed.count(True) == 1 and passed[0]
    clock.t += 30.0
    again = record("Unable connect to node with id %s: %s", 1, "refused")
    assert f.filter(again)
    assert again.getMessage() == ("Unable connect to node with id 1: refused "
                                  "[repeated 9999 more times in the last 30 s, not logged]")
    clock.t += 30.0
    quiet = record("Unable connect to node with id %s: %s", 1, "refused")
    assert f.filter(quiet) and "repeated" not in quiet.getMessage()  # nothing was dropped


def test_other_messages_levels_and_loggers_pass_independently() -> None:
    f = RepeatFilter(window_s=30.0, clock=Clock())
    assert f.filter(record("a %s", 1))
    assert f.filter(record("b %s", 1))
    assert f.filter(record("a %s", 1, level=logging.WARNING))
    assert f.filter(record("a %s", 1, name="faust.worker"))
    assert not f.filter(record("a %s", 2))  # same template, other arguments: a repeat


def test_memory_stays_bounded_with_preformatted_messages() -> None:
    clock = Clock()
    f = RepeatFilter(window_s=1.0, clock=clock)
    for i in range(5 * MAX_KEYS):
        clock.t += 0.01
        assert f.filter(record(f"offset {i} done"))  # each text differs: all pass
    assert len(f._seen) <= MAX_KEYS + 1


def test_installed_on_handlers_it_filters_records_of_child_loggers() -> None:
    root = logging.getLogger("ewarn-test-root")
    root.propagate = False
    seen: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, rec: logging.LogRecord) -> None:
            seen.append(rec.getMessage())

    root.addHandler(ListHandler())
    root.addHandler(ListHandler())  # a second handler (the worker has a console and Faust's)
    quiet_repeats(root)
    child = logging.getLogger("ewarn-test-root.aiokafka")
    for _ in range(50):
        child.error("Unable to update metadata from [%s]", 1)
    # every handler writes the first occurrence, none writes a repeat
    assert seen == ["Unable to update metadata from [1]"] * 2
