"""Staged table writes: the crash-safety mechanism of the streaming worker."""

from __future__ import annotations

from typing import Any

from agents.delivery import EventPosition, StagedStore


def test_writes_are_invisible_to_the_table_until_flush() -> None:
    table: dict[str, Any] = {}
    store = StagedStore(table, EventPosition(0, 5))
    sensors = store.view("sensor:")
    sensors["a"] = {"x": 1}
    assert sensors["a"] == {"x": 1}
    assert table == {}
    assert store.flush() == 1
    assert table == {"sensor:a": {"p": 0, "o": 5, "v": {"x": 1}}}


def test_already_applied_compares_partition_and_offset() -> None:
    table: dict[str, Any] = {"sensor:a": {"p": 1, "o": 10, "v": {}}}
    assert StagedStore(table, EventPosition(1, 10)).already_applied("sensor:a")
    assert StagedStore(table, EventPosition(1, 9)).already_applied("sensor:a")
    assert not StagedStore(table, EventPosition(1, 11)).already_applied("sensor:a")
    # The same offset on another partition is a different event.
    assert not StagedStore(table, EventPosition(2, 5)).already_applied("sensor:a")
    assert not StagedStore(table, EventPosition(1, 5)).already_applied("sensor:b")


def test_iteration_sees_only_the_current_partition_and_staged_keys() -> None:
    table: dict[str, Any] = {
        "site:s1": {"p": 0, "o": 1, "v": 1},
        "site:s2": {"p": 1, "o": 1, "v": 2},
        "sensor:x": {"p": 0, "o": 1, "v": 3},
    }
    store = StagedStore(table, EventPosition(0, 2))
    sites = store.view("site:")
    sites["s3"] = 4
    assert sorted(sites) == ["s1", "s3"]
    assert len(sites) == 2
    del sites["s1"]
    assert sorted(sites) == ["s3"]
    store.flush()
    assert "site:s1" not in table
    assert table["site:s3"] == {"p": 0, "o": 2, "v": 4}
    assert table["site:s2"]["v"] == 2


def test_flush_writes_sensor_entries_last() -> None:
    order: list[str] = []

    class Recording(dict[str, Any]):
        def __setitem__(self, key: str, value: Any) -> None:
            order.append(key)
            super().__setitem__(key, value)

    store = StagedStore(Recording(), EventPosition(0, 1))
    store.view("sensor:")["a"] = 1
    store.view("site:")["s"] = 2
    store.view("sensor:")["b"] = 3
    store.flush()
    assert order[0] == "site:s"
    assert set(order[1:]) == {"sensor:a", "sensor:b"}


def test_source_marks_hold_the_watermark_at_the_slowest_source() -> None:
    from agents.delivery import SourceMarks

    marks = SourceMarks(max_lag_ms=1000, sources=2)
    # Until both sources were heard from, only the lag bound moves event time.
    assert marks.observe(0, 0, 100) == 100 - 1000
    assert marks.observe(0, 1, 50) == 50  # a slower source holds it back
    assert marks.observe(0, 0, 900) == 50
    assert marks.observe(0, 0, 1200) == 200  # but never more than max_lag behind
    assert marks.observe(1, 0, 10) == 10 - 1000  # partitions are independent
    # A tick reports a source's progress, and an idle advance raises a floor.
    assert marks.tick(1, {1: 20}) == 10
    assert marks.tick(0, {1: 1200}, advance_ms=500) == 1700
    assert marks.observe(0, 1, 60) == 1700  # floors and marks never go back
    assert marks.watermark(5) is None


def test_source_marks_snapshot_and_restore() -> None:
    from agents.delivery import SourceMarks

    marks = SourceMarks(max_lag_ms=10_000, save_every=3, sources=2)
    marks.observe(0, 0, 100)
    first = marks.snapshot_due(0)  # a new source is saved at once
    assert first == {"latest": {"0": 100}, "floor": None}
    marks.observe(0, 0, 150)
    assert marks.snapshot_due(0) is None
    marks.observe(0, 1, 120)  # second source: save again
    saved = marks.snapshot_due(0)
    assert saved == {"latest": {"0": 150, "1": 120}, "floor": None}
    other = SourceMarks(max_lag_ms=10_000, sources=2)
    other.restore(0, saved)
    assert other.known(0)
    assert other.watermark(0) == 120


def test_source_positions_recognise_a_second_delivery() -> None:
    table: dict[str, Any] = {}
    store = StagedStore(table, EventPosition(0, 10))
    store.source = (3, 500)
    store.view("sensor:")["a"] = {"x": 1}
    store.view("site:")["s"] = {"y": 1}
    store.flush()
    assert table["sensor:a"]["sp"] == 3 and table["sensor:a"]["so"] == 500
    assert "sp" not in table["site:s"]
    later = StagedStore(table, EventPosition(0, 99))  # the same reading, forwarded again
    assert later.source_applied("sensor:a", 3, 500)
    assert later.source_applied("sensor:a", 3, 499)
    assert not later.source_applied("sensor:a", 3, 501)
    assert not later.source_applied("sensor:a", 2, 400)  # another source partition
    # A tick rewriting the sensor keeps the last reading's source position.
    tick = StagedStore(table, EventPosition(0, 100))
    tick.view("sensor:")["a"] = {"x": 2}
    tick.flush()
    assert (table["sensor:a"]["sp"], table["sensor:a"]["so"]) == (3, 500)
