"""The pause after a metadata update that reached no broker (agents/retry.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiokafka.client import AIOKafkaClient

from agents.retry import install_metadata_backoff


def broken() -> None:
    raise RuntimeError("a metrics hook that fails")


class Stub:
    _retry_backoff = 0.2


async def test_a_failed_update_waits_the_backoff_a_good_one_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = [False, True, False]

    async def fake_update(self: Any, cluster: Any, topics: Any) -> bool:
        return answers.pop(0)

    monkeypatch.setattr(AIOKafkaClient, "_metadata_update", fake_update)
    failures: list[int] = []
    monkeypatch.setattr("agents.retry.failure_listeners", [lambda: failures.append(1), broken])
    assert install_metadata_backoff()
    assert install_metadata_backoff()  # idempotent: wrapped once
    update = AIOKafkaClient._metadata_update
    timings = []
    for _ in range(3):
        t0 = time.monotonic()
        result = await update(Stub(), None, None)
        timings.append((result, time.monotonic() - t0))
    assert [r for r, _ in timings] == [False, True, False]
    assert timings[0][1] >= 0.2 and timings[2][1] >= 0.2  # paused after each failure
    assert timings[1][1] < 0.1  # the broker answered: no pause
    assert update.__wrapped__ is fake_update
    assert len(failures) == 2  # each failure reported; a broken listener changes nothing
