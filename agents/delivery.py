"""At-least-once delivery with idempotent state: staged table writes.

The Engine reads and writes plain mappings. In the worker those mappings are views
on one Faust table, staged in memory while an event is processed and written to
the table (hence its changelog) only after the event's outputs were acknowledged
by the broker. Every stored entry is wrapped as ``{"p": partition, "o": offset,
"v": value}``: the position of the event that last wrote it. After a crash the
table is restored from the changelog and the uncommitted events are consumed
again; an entry whose position is at or past the event's position shows the event
was already applied, so it is not applied twice.

Iteration is limited to the entries of the current event's partition: a Faust
table writes changelog records to the partition of the event being processed,
so touching another partition's keys from here would move them on recovery.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

_DELETED = object()


@dataclass(frozen=True, slots=True)
class EventPosition:
    partition: int
    offset: int


class StagedStore:
    """A write-back overlay on a table (any MutableMapping of wrapped entries)."""

    def __init__(self, table: MutableMapping[str, Any], position: EventPosition) -> None:
        self.table = table
        self.position = position
        self.staged: dict[str, Any] = {}
        # The telemetry (partition, offset) of the reading being applied, if any:
        # stamped on the entries it writes so a second delivery can be recognised.
        self.source: tuple[Any, Any] = (None, None)

    def _entry(self, key: str) -> dict[str, Any] | None:
        entry = self.table.get(key)
        return entry if isinstance(entry, dict) and "v" in entry else None

    def already_applied(self, key: str) -> bool:
        """True if ``key`` was written by this event or a later one of its partition."""
        entry = self._entry(key)
        return (
            entry is not None
            and entry.get("p") == self.position.partition
            and int(entry.get("o", -1)) >= self.position.offset
        )

    def source_applied(self, key: str, partition: Any, offset: Any) -> bool:
        """True if ``key`` already holds this telemetry record or a later one."""
        entry = self._entry(key)
        if entry is None or partition is None or offset is None:
            return False
        return entry.get("sp") == partition and int(entry.get("so", -1)) >= int(offset)

    def get_value(self, key: str) -> Any:
        if key in self.staged:
            value = self.staged[key]
            if value is _DELETED:
                raise KeyError(key)
            return value
        entry = self._entry(key)
        if entry is None:
            raise KeyError(key)
        return entry["v"]

    def set_value(self, key: str, value: Any) -> None:
        self.staged[key] = value

    def delete_value(self, key: str) -> None:
        self.get_value(key)
        self.staged[key] = _DELETED

    def owns(self, key: str) -> bool:
        """Staged here, or stored by an event of this partition (see module doc)."""
        if key in self.staged:
            return self.staged[key] is not _DELETED
        entry = self._entry(key)
        return entry is not None and entry.get("p") == self.position.partition

    def keys_with_prefix(self, prefix: str) -> Iterator[str]:
        seen: set[str] = set()
        for key in list(self.table.keys()):
            if not key.startswith(prefix) or key in seen:
                continue
            entry = self._entry(key)
            if entry is not None and entry.get("p") == self.position.partition:
                seen.add(key)
                if self.staged.get(key) is not _DELETED:
                    yield key
        for key, value in list(self.staged.items()):
            if key.startswith(prefix) and key not in seen and value is not _DELETED:
                yield key

    def view(self, prefix: str) -> StoreView:
        return StoreView(self, prefix)

    def flush(self) -> int:
        """Write staged entries to the table; sensor entries last (see module doc)."""
        order = sorted(self.staged, key=lambda k: k.startswith("sensor:"))
        for key in order:
            value = self.staged[key]
            if value is _DELETED:
                self.table.pop(key, None)
            else:
                entry = {"p": self.position.partition, "o": self.position.offset, "v": value}
                if self.source[0] is not None and key.startswith("sensor:"):
                    entry["sp"], entry["so"] = self.source
                elif key.startswith("sensor:"):
                    previous = self._entry(key)  # a tick: keep the last reading's source
                    if previous is not None and "sp" in previous:
                        entry["sp"], entry["so"] = previous["sp"], previous["so"]
                self.table[key] = entry
        n = len(self.staged)
        self.staged.clear()
        return n


class StoreView(MutableMapping[str, Any]):
    """The Engine's view of one kind of entry (``sensor:`` or ``site:``) in a StagedStore."""

    def __init__(self, store: StagedStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix

    @property
    def scope(self) -> int:
        """The Engine keeps event time per scope: here, the event's partition."""
        return self.store.position.partition

    def owns(self, key: str) -> bool:
        return self.store.owns(self.prefix + key)

    def __getitem__(self, key: str) -> Any:
        return self.store.get_value(self.prefix + key)

    def __setitem__(self, key: str, value: Any) -> None:
        self.store.set_value(self.prefix + key, value)

    def __delitem__(self, key: str) -> None:
        self.store.delete_value(self.prefix + key)

    def __iter__(self) -> Iterator[str]:
        n = len(self.prefix)
        return (k[n:] for k in self.store.keys_with_prefix(self.prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class SourceMarks:
    """Event-time watermark of each site partition from its source partitions' progress.

    A site partition merges readings from every ``ew.telemetry`` partition, which
    the ingest agents consume at their own pace; the latest reading's time would
    run ahead of slower sources and judge their sensors stale too early. The
    watermark is the slowest source's progress, held at most ``max_lag_ms`` behind
    the fastest. Progress comes from the readings themselves and from ingest
    ticks: an ingest agent that owns a source partition sends, after the readings
    it forwarded, "source s has delivered everything up to t" (Kafka keeps that
    order within the site partition). An idle advance (wall clock, input stopped)
    raises a floor on top.
    """

    def __init__(self, max_lag_ms: int, save_every: int = 500, sources: int = 0) -> None:
        self.max_lag_ms = max_lag_ms
        self.sources = sources  # partitions of ew.telemetry; all must be heard from
        self.save_every = save_every
        self._latest: dict[int, dict[int, int]] = {}
        self._floor: dict[int, int] = {}
        self._unsaved: dict[int, int] = {}

    def known(self, partition: int) -> bool:
        return partition in self._latest

    def restore(self, partition: int, saved: dict[str, Any] | None) -> None:
        """Continue from a saved snapshot (a restarted or newly assigned partition).

        The snapshot may be a little old: that only holds the watermark back, it
        never lets it run ahead of a source that had not been seen yet.
        """
        saved = saved or {}
        self._latest[partition] = {int(k): int(v) for k, v in saved.get("latest", {}).items()}
        if saved.get("floor") is not None:
            self._floor[partition] = int(saved["floor"])

    def forget(self) -> None:
        """After a rebalance: reload every partition's marks from the table."""
        self._latest.clear()
        self._floor.clear()
        self._unsaved.clear()

    def _advance(self, partition: int, source: int, ts_ms: int) -> bool:
        latest = self._latest.setdefault(partition, {})
        known = latest.get(source)
        if known is None or ts_ms > known:
            latest[source] = ts_ms
            return known is None
        return False

    def watermark(self, partition: int) -> int | None:
        """The partition's watermark, or None while it cannot be judged yet."""
        latest = self._latest.get(partition, {})
        floor = self._floor.get(partition)
        if not latest:
            return floor
        values = latest.values()
        lagged = max(values) - self.max_lag_ms
        # A source not heard from yet may be far behind: only the lag bound holds.
        mark = min(values) if len(latest) >= self.sources else None
        mark = lagged if mark is None else max(mark, lagged)
        return mark if floor is None else max(mark, floor)

    def observe(self, partition: int, source: int | None, ts_ms: int) -> int | None:
        """Record a reading from ``source``; return the partition's watermark."""
        if self._advance(partition, -1 if source is None else int(source), ts_ms):
            self._unsaved[partition] = self.save_every  # a new source: save at once
        return self.watermark(partition)

    def tick(self, partition: int, progress: dict[int, int], advance_ms: int = 0) -> int | None:
        """Apply an ingest tick: per-source progress, plus an optional idle advance."""
        for source, ts_ms in progress.items():
            if self._advance(partition, int(source), int(ts_ms)):
                self._unsaved[partition] = self.save_every
        if advance_ms > 0:
            values = self._latest.get(partition, {}).values()
            if values:
                floor = max(values) + advance_ms
                self._floor[partition] = max(floor, self._floor.get(partition, floor))
        return self.watermark(partition)

    def snapshot_due(self, partition: int) -> dict[str, Any] | None:
        """A snapshot to store now (a new source, or every ``save_every`` readings)."""
        n = self._unsaved.get(partition, 0) + 1
        if n < self.save_every:
            self._unsaved[partition] = n
            return None
        self._unsaved[partition] = 0
        return {"latest": {str(k): v for k, v in self._latest.get(partition, {}).items()},
                "floor": self._floor.get(partition)}
