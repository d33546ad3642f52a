"""A pause between failed metadata requests while the broker is unreachable.

Why: aiokafka (0.14) retries its metadata request in a tight loop when the broker
is away and the worker has output pending: the producer's sender and the fetcher
ask for new metadata, the request fails at once (connection refused) and they ask
again. Measured: one core at 100 % for the whole outage (10.0 s of CPU per 10 s).
The Java client waits ``retry.backoff.ms`` between such attempts; this gives
aiokafka's client the same pause (its own ``retry_backoff_ms``, 100 ms by default)
after a metadata update that reached no broker. Nothing changes while the broker
answers.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

from aiokafka.client import AIOKafkaClient

log = logging.getLogger("ewarn.worker")

_PATCHED = "_ewarn_metadata_backoff"
#: Called after each metadata update that reached no broker (the worker counts them
#: in ``ewarn_kafka_unreachable_total``: the broker is away, as this client sees it).
failure_listeners: list[Callable[[], None]] = []


def install_metadata_backoff() -> bool:
    """Wrap ``AIOKafkaClient._metadata_update`` once; False if aiokafka has changed."""
    original = getattr(AIOKafkaClient, "_metadata_update", None)
    if original is None or not asyncio.iscoroutinefunction(original):
        log.warning("aiokafka has no coroutine _metadata_update: retry pause not installed")
        return False
    if getattr(original, _PATCHED, False):
        return True

    @functools.wraps(original)
    async def metadata_update_with_backoff(self: Any, *args: Any, **kwargs: Any) -> Any:
        updated = await original(self, *args, **kwargs)
        if updated is False:
            for listener in failure_listeners:
                try:
                    listener()
                except Exception:  # a metrics hook must never break the client
                    log.exception("metadata failure listener failed")
            await asyncio.sleep(getattr(self, "_retry_backoff", 0.1))
        return updated

    setattr(metadata_update_with_backoff, _PATCHED, True)
    AIOKafkaClient._metadata_update = metadata_update_with_backoff
    return True
