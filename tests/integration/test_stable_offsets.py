"""A new owner waits for the old owner's open transaction (streams/engine/transactions.py
``await_stable_offsets``), on Apache Kafka.

The window it closes: a transactional member sends its offsets (the coordinator checks its
generation then), is frozen before its commit, loses its partitions, wakes and commits: without
the wait its outputs land after the new owner's (test_zombie_fencing hit it in 2 of 3 runs).
Here the old owner is held at exactly that point: offsets sent, commit not yet made."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic
from support.waiting import wait_until

from streams.engine.read_to_end import read_to_end
from streams.engine.transactions import await_stable_offsets


def topics(kafka: Any) -> tuple[str, str]:
    source, sink = f"stable-in-{uuid.uuid4().hex[:6]}", f"stable-out-{uuid.uuid4().hex[:6]}"
    admin = kafka.admin()  # kept until the futures resolve
    for future in admin.create_topics([NewTopic(source, 1, 1), NewTopic(sink, 1, 1)]).values():
        future.result()
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    for i in range(10):
        producer.produce(source, str(i).encode())
    producer.flush(30)
    return source, sink


def old_owner_holding_its_offsets(kafka: Any, group: str, source: str, sink: str) -> Producer:
    """A member that read ``source``, wrote one output and sent its offsets in a transaction it
    has not committed yet."""
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap_servers, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([source])
    read: list[Any] = []
    wait_until(lambda: read.extend(consumer.consume(10, 0.5)) or len(read) >= 10, 60, "the old owner read")
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers,
                         "transactional.id": f"old-owner-{uuid.uuid4().hex[:6]}",
                         "transaction.timeout.ms": 60_000})  # fmt: skip
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(sink, b"the old owner's last output")
    producer.send_offsets_to_transaction(
        [TopicPartition(source, 0, 10)], consumer.consumer_group_metadata(), 30
    )
    consumer.close()  # its session ends: a new member gets the partition
    return producer


def new_owner(kafka: Any, group: str) -> Consumer:
    return Consumer({"bootstrap.servers": kafka.bootstrap_servers, "group.id": group,
                     "isolation.level": "read_committed"})  # fmt: skip


@pytest.mark.timeout(180)
def test_the_new_owner_starts_only_after_the_old_owners_transaction_ends(kafka: Any) -> None:
    source, sink = topics(kafka)
    group = f"stable-{uuid.uuid4().hex[:6]}"
    old = old_owner_holding_its_offsets(kafka, group, source, sink)
    waking = threading.Event()

    def wake_and_commit() -> None:  # what the frozen member does when it wakes
        waking.set()
        old.commit_transaction(30)

    consumer = new_owner(kafka, group)
    try:
        timer = threading.Timer(2.0, wake_and_commit)
        timer.start()
        await_stable_offsets(consumer, [TopicPartition(source, 0)], within_s=60)
        # it cannot have returned before the old owner asked to commit (without the wait it
        # returns at once, 2 s before that)
        assert waking.is_set()
        timer.join()
    finally:
        consumer.close()
    config = {"bootstrap.servers": kafka.bootstrap_servers}
    wait_until(lambda: len(list(read_to_end(config, sink))) == 1, 30, "the old owner's output committed")
    # and with nothing open, it answers at once (no wait, no error)
    fresh = new_owner(kafka, group)
    try:
        await_stable_offsets(fresh, [TopicPartition(source, 0)], within_s=30)
        assert fresh.committed([TopicPartition(source, 0)], timeout=10)[0].offset == 10
    finally:
        fresh.close()


@pytest.mark.timeout(180)
def test_an_owner_that_never_ends_its_transaction_is_reported_not_waited_for_forever(kafka: Any) -> None:
    source, sink = topics(kafka)
    group = f"stable-{uuid.uuid4().hex[:6]}"
    old = old_owner_holding_its_offsets(kafka, group, source, sink)
    consumer = new_owner(kafka, group)
    try:
        with pytest.raises(RuntimeError, match="still held by an open transaction"):
            await_stable_offsets(consumer, [TopicPartition(source, 0)], within_s=3)
    finally:
        consumer.close()
        old.abort_transaction(30)
