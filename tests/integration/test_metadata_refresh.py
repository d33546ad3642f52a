"""A topic missing from the first group assignment is picked up within the worker's
metadata refresh, not aiokafka's default 5 minutes.

Why it matters: Faust creates its internal topics and subscribes at once; on a broker
that has not yet published a new topic (seen on a freshly started broker: "Ignoring
missing topic: '<app>-site-risk'" in the worker log of a demo run that raised no
alert) the agent reading that topic gets no partitions for 5 minutes. Here the late
topic is forced: the consumer
subscribes before it exists.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic

from agents.app import METADATA_MAX_AGE_MS

pytestmark = pytest.mark.integration


async def test_a_topic_created_after_subscribing_is_assigned_within_the_refresh(
    bootstrap: str, make_topic: Callable[..., str]
) -> None:
    early = make_topic("early", partitions=2)
    late = f"late-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=f"g-{uuid.uuid4().hex[:8]}",
        metadata_max_age_ms=METADATA_MAX_AGE_MS,  # as the worker's Faust consumer
    )
    await consumer.start()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        consumer.subscribe([early, late])
        deadline = time.monotonic() + 30
        while not consumer.assignment() and time.monotonic() < deadline:
            await consumer.getmany(timeout_ms=200)
        assert {tp.topic for tp in consumer.assignment()} == {early}  # the late one is missing
        admin.create_topics([NewTopic(late, num_partitions=2, replication_factor=1)])
        created = time.monotonic()
        while not any(tp.topic == late for tp in consumer.assignment()):
            assert time.monotonic() - created < METADATA_MAX_AGE_MS / 1000 + 10, "never assigned"
            await consumer.getmany(timeout_ms=200)
        assert {tp.topic for tp in consumer.assignment()} == {early, late}
    finally:
        admin.close()
        await consumer.stop()
