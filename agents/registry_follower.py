"""Every worker follows the whole compacted ``ew.registry`` topic (no consumer group).

The registry is small and every worker needs all of it (validation of any sensor,
responsibility data for any site), so it is read like a broadcast table: from the
beginning, then kept up to date. A sensor published at run time is monitored
from its next reading on, without a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Protocol

from aiokafka import AIOKafkaConsumer

from pipeline.model import Registry
from pipeline.registry import apply_registry_record
from pipeline.settings import Settings

log = logging.getLogger("ewarn.registry")


class HasRegistry(Protocol):
    registry: Registry


async def follow(
    settings: Settings, rt: HasRegistry, on_update: Callable[[Registry], None]
) -> None:
    """Apply registry records as they arrive; never raises (a Faust task must not die)."""
    while True:
        # No group: every worker gets every partition, from the beginning.
        consumer = AIOKafkaConsumer(
            settings.topics.registry, bootstrap_servers=settings.bootstrap,
            enable_auto_commit=False, group_id=None, auto_offset_reset="earliest",
        )
        try:
            await consumer.start()
            while True:
                batch = await consumer.getmany(timeout_ms=1000)
                registry = rt.registry
                changed = False
                for msgs in batch.values():
                    for msg in msgs:
                        record = None if msg.value is None else json.loads(msg.value)
                        key = (msg.key or b"").decode()
                        try:
                            registry = apply_registry_record(registry, record, key)
                            changed = True
                        except Exception as exc:
                            log.warning("ignoring bad registry record %s: %s", key, exc)
                if changed:
                    on_update(registry)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("registry follower failed; retrying in 2 s")
            await asyncio.sleep(2)
        finally:
            await consumer.stop()
