"""Smoke test of the real broker: kafka-python produces, aiokafka consumes, order holds."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer
from kafka import KafkaProducer

pytestmark = pytest.mark.integration

N = 10_000


async def test_produce_kafka_python_consume_aiokafka(
    bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("smoke", partitions=3)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    sent: dict[int, list[int]] = defaultdict(list)
    futures = []
    for i in range(N):
        futures.append((i, producer.send(topic, key=str(i % 17).encode(), value=str(i).encode())))
    producer.flush()
    for i, fut in futures:
        sent[fut.get(timeout=30).partition].append(i)
    producer.close()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None,
    )
    await consumer.start()
    got: dict[int, list[int]] = defaultdict(list)
    try:
        total = 0
        while total < N:
            batch = await consumer.getmany(timeout_ms=5000)
            if not batch:
                break
            for tp, records in batch.items():
                for r in records:
                    got[tp.partition].append(int(r.value))
                    total += 1
    finally:
        await consumer.stop()

    assert sum(len(v) for v in got.values()) == N
    assert sorted(i for v in got.values() for i in v) == list(range(N))
    # Per partition, the consumer sees exactly the producer's order.
    assert dict(got) == dict(sent)
    assert len(got) == 3


def test_a_started_broker_can_coordinate_groups_at_once() -> None:
    """``broker.start`` returns only once group coordination works: the first worker
    must not join while ``__consumer_offsets`` is still being created."""
    from kafka import KafkaAdminClient

    from pipeline import broker as local_broker

    info = local_broker.start()
    try:
        admin = KafkaAdminClient(bootstrap_servers=info.bootstrap)
        try:
            assert "__consumer_offsets" in admin.list_topics()
            admin.describe_groups(["any-group"])  # no CoordinatorNotAvailable
        finally:
            admin.close()
    finally:
        local_broker.stop(info)
