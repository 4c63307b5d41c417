"""The broker under test in tests/contract/test_memory_broker.py: confluent-kafka on Apache
Kafka or the memory broker, through streams/engine/clients.py, with the waits the real one needs."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import NewTopic

from streams.engine.clients import admin, consumer, producer
from support.waiting import wait_until

GROUP_TIMEOUTS = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
DEADLINE_S = 60.0  # a rebalance on a loaded 2-core machine; memory answers at once


@dataclass
class Broker:
    kind: str
    config: dict[str, Any]
    _clients: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.admin = admin(self.config)  # kept until its futures resolve (FIELD-NOTES, small traps)

    def topic(self, partitions: int = 1) -> str:
        name = f"contract-{uuid.uuid4().hex[:10]}"
        self.admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=30)[name].result(30)

        def leaders_elected() -> bool:
            meta = self.admin.list_topics(name, timeout=10).topics[name]
            return len(meta.partitions) == partitions and all(p.leader >= 0 for p in meta.partitions.values())

        wait_until(leaders_elected, DEADLINE_S, f"leaders of {name}", retry_on=(KafkaException,))
        return name

    def producer(self, **extra: Any) -> Any:
        return producer({**self.config, **extra})

    def consumer(self, group: str | None = None, **extra: Any) -> Any:
        made = consumer({**self.config, "group.id": group or f"g-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, **GROUP_TIMEOUTS, **extra})  # fmt: skip
        self._clients.append(made)
        return made

    def close(self) -> None:
        for made in self._clients:
            made.close()


def coordinator_ready(broker: Broker) -> None:
    """Wait for a fresh broker's group coordinator (__consumer_offsets is created on first use):
    until then an assign() that needs committed offsets gets NOT_COORDINATOR and librdkafka
    leaves those partitions unfetched (seen here). The memory broker has no such start-up."""
    probe = broker.consumer()
    wait_until(
        lambda: probe.committed([TopicPartition("contract-probe", 0)], timeout=5),
        DEADLINE_S, "the group coordinator", retry_on=(KafkaException,),
    )  # fmt: skip


def produce_all(
    broker: Broker, topic: str, records: list[tuple[bytes | None, bytes]], **kw: Any
) -> list[Message]:
    """Produce and flush; the delivery reports in the order served."""
    reports: list[tuple[KafkaError | None, Message]] = []
    out = broker.producer()
    for key, value in records:
        out.produce(topic, value, key, on_delivery=lambda e, m: reports.append((e, m)), **kw)
    assert out.flush(30) == 0
    assert [e for e, _ in reports] == [None] * len(records)
    return [m for _, m in reports]


def drain(source: Any, until: Callable[[list[Message]], bool], what: str, n: int = 500) -> list[Message]:
    """consume(n, 0.2) until ``until(everything so far)``, with a deadline."""
    seen: list[Message] = []

    def done() -> bool:
        seen.extend(source.consume(n, 0.2))
        return until(seen)

    wait_until(done, DEADLINE_S, what, seen=lambda: [(m.partition(), m.offset(), m.error()) for m in seen],
               interval_s=0)  # fmt: skip
    return seen


def records_of(messages: list[Message]) -> list[Message]:
    return [m for m in messages if m.error() is None]


def eofs_of(messages: list[Message]) -> list[tuple[int, int]]:
    return [(m.partition(), m.offset()) for m in messages
            if m.error() is not None and m.error().code() == KafkaError._PARTITION_EOF]  # fmt: skip
