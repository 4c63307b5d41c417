"""An in-process broker with Producer / Consumer / AdminClient stand-ins for confluent-kafka's.

Selected by ``{"bootstrap.servers": "memory://<name>"}``: every client of the same name in
the process shares one `MemoryCluster`. ``clients(config)`` gives the three classes for a
config (these for memory://, confluent-kafka's otherwise); streams/engine/clients.py builds
clients from them. The same contract suite runs on Apache Kafka and on this
(tests/contract/test_memory_broker.py): that is what lets unit tests use it.

Covered: create_topics (futures) / delete_topics / list_topics metadata with partitions and
brokers; produce(topic, value, key, partition=, on_delivery=, timestamp=, headers=) with
librdkafka's default ``consistent_random`` partitioner and delivery reports served from
poll()/flush(); the Consumer of streams/engine/memory_consumer.py. What differs from Kafka
is listed in streams/engine/memory_cluster.py.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka.admin import ClusterMetadata, NewTopic

from streams.engine.memory_cluster import (
    TIMESTAMP_CREATE_TIME,
    Record,
    cluster,
    forget,
    metadata,
)
from streams.engine.memory_consumer import Consumer, cluster_of

Delivery = Callable[[KafkaError | None, Message], None]
Headers = dict[str, Any] | list[tuple[str, Any]] | None


def is_memory(config: dict[str, Any]) -> bool:
    return str(config.get("bootstrap.servers", "")).startswith("memory://")


def clients(config: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(Producer, Consumer, AdminClient) classes for ``config``: the memory broker's for a
    ``memory://`` bootstrap, confluent-kafka's otherwise."""
    if is_memory(config):
        return Producer, Consumer, AdminClient
    from confluent_kafka import Consumer as KafkaConsumer
    from confluent_kafka import Producer as KafkaProducer
    from confluent_kafka.admin import AdminClient as KafkaAdmin

    return KafkaProducer, KafkaConsumer, KafkaAdmin


def _encoded(value: str | bytes | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


class Producer:
    """Records are appended when produced; their delivery reports wait for poll()/flush()."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._cluster = cluster_of(config)
        partitioner = str(config.get("partitioner", "consistent_random"))
        if partitioner != "consistent_random":
            msg = f"partitioner {partitioner!r}: the memory broker implements consistent_random only"
            raise ValueError(msg)
        self._default_delivery: Delivery | None = config.get("on_delivery")
        self._only_errors = str(config.get("delivery.report.only.error", False)).lower() in ("true", "1")
        self._reports: deque[tuple[Delivery, KafkaError | None, Message]] = deque()

    def produce(
        self, topic: str, value: str | bytes | None = None, key: str | bytes | None = None,
        partition: int = -1, on_delivery: Delivery | None = None, callback: Delivery | None = None,
        timestamp: int = 0, headers: Headers = None,
    ) -> None:  # fmt: skip
        key_bytes, value_bytes = _encoded(key), _encoded(value)
        pairs = list(headers.items()) if isinstance(headers, dict) else headers
        encoded = tuple((str(k), _encoded(v)) for k, v in pairs) if pairs else None
        report = on_delivery or callback or self._default_delivery
        try:
            chosen = self._cluster.choose_partition(topic, key_bytes, partition)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise  # an unknown partition of a known topic: librdkafka raises in produce() too
            if report is not None:  # librdkafka fails such a message in its delivery report
                failed = Message(topic, partition, None, key_bytes, value_bytes, None, exc.args[0])
                self._reports.append((report, exc.args[0], failed))
            return
        ms = timestamp or int(time.time() * 1000)
        offset, record = self._cluster.append(
            topic, chosen, Record(key_bytes, value_bytes, encoded, (TIMESTAMP_CREATE_TIME, ms))
        )
        if report is not None and not self._only_errors:
            headers_out: list[tuple[str, Any]] | None = list(encoded) if encoded is not None else None
            delivered = Message(
                topic, chosen, offset, key_bytes, value_bytes, headers_out, None, record.timestamp
            )
            self._reports.append((report, None, delivered))

    def poll(self, timeout: float | None = None) -> int:
        """Serves the delivery reports due; with none, waits ``timeout`` as librdkafka would."""
        served = 0
        while self._reports:
            report, error, message = self._reports.popleft()
            report(error, message)
            served += 1
        if not served and timeout:
            time.sleep(timeout)
        return served

    def flush(self, timeout: float | None = None) -> int:
        self.poll(0)
        return len(self._reports)

    def __len__(self) -> int:
        return len(self._reports)

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> ClusterMetadata:
        return metadata(self._cluster, topic)


class AdminClient:
    def __init__(self, config: dict[str, Any]) -> None:
        self._cluster = cluster_of(config)

    def create_topics(self, new_topics: list[NewTopic], **_options: Any) -> dict[str, Future[None]]:
        names = [t.topic for t in new_topics]
        if len(set(names)) != len(names):
            msg = f"duplicate topics in request: {names}"
            raise ValueError(msg)
        futures: dict[str, Future[None]] = {}
        for new in new_topics:
            future: Future[None] = Future()
            try:
                self._cluster.create_topic(
                    new.topic, new.num_partitions, new.replication_factor, dict(new.config or {})
                )
                future.set_result(None)
            except KafkaException as exc:
                future.set_exception(exc)
            futures[new.topic] = future
        return futures

    def delete_topics(self, topics: list[str], **_options: Any) -> dict[str, Future[None]]:
        futures: dict[str, Future[None]] = {}
        for name in topics:
            future: Future[None] = Future()
            try:
                self._cluster.delete_topic(name)
                future.set_result(None)
            except KafkaException as exc:
                future.set_exception(exc)
            futures[name] = future
        return futures

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> ClusterMetadata:
        return metadata(self._cluster, topic)

    def poll(self, timeout: float | None = None) -> int:
        return 0


__all__ = ["AdminClient", "Consumer", "Producer", "clients", "cluster", "forget", "is_memory", "metadata"]
