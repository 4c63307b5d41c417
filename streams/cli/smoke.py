"""Contract smoke run: every example message through a real broker and back.

Produces each example of schemas/examples in Confluent-framed Avro (key as the
contract says, Kafka timestamp = event time where the record has one), then
consumes every contract topic with a consumer group and decodes each message.
Used by `ccpulse demo` (on Tansu) and by the integration test (on Apache Kafka).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer

from streams.wire.codec import Codec
from streams.wire.kafka_config import client_config
from streams.wire.topic_contracts import TopicContract, load_examples, load_topic_contracts
from streams.wire.topics import (
    AGENT_TOPIC,
    ALERTS_TOPIC,
    CONTACT_TOPIC,
    DEAD_LETTER_TOPIC,
    DECISIONS_TOPIC,
    PLAN_TOPIC,
    QUEUE_STATE_TOPIC,
    SNAPSHOT_TOPIC,
    SURVEY_TOPIC,
)

TIME_FIELDS = (
    "event_time_ms", "decided_at_ms", "emitted_at_ms", "as_of_ms", "updated_at_ms", "failed_at_ms",
    "published_at_ms",
)  # fmt: skip


@dataclass(frozen=True)
class SentMessage:
    topic: str
    example: str
    key: bytes
    value: bytes
    timestamp_ms: int | None


@dataclass(frozen=True)
class ReceivedMessage:
    topic: str
    key: bytes
    value: bytes
    decoded: Any
    partition: int
    offset: int
    timestamp_ms: int


def message_key(contract: TopicContract, record: dict[str, Any]) -> bytes:
    """The partition key of a record, following the contract's key description."""
    name = contract.name
    if name in (CONTACT_TOPIC, AGENT_TOPIC, SURVEY_TOPIC):
        return str(record["region"]).encode()
    if name == DECISIONS_TOPIC:
        return str(record["contact_id"]).encode()
    if name == SNAPSHOT_TOPIC:
        return f"{record['region']}|{record.get('channel') or 'ALL'}|{record['window']}".encode()
    if name == QUEUE_STATE_TOPIC:
        return f"{record['region']}|{record['queue']}".encode()
    if name == ALERTS_TOPIC:
        return f"{record['name']}|{record.get('region') or 'ALL'}".encode()
    if name == DEAD_LETTER_TOPIC:
        return str(record["original_topic"]).encode()
    if name == PLAN_TOPIC:
        return f"{record['region']}|{record['channel']}|{record['interval_start_ms']}".encode()
    msg = f"no key rule for topic {name!r}"
    raise KeyError(msg)


def build_messages(codec: Codec) -> list[SentMessage]:
    messages: list[SentMessage] = []
    for contract in load_topic_contracts().values():
        for example_name, json_value in load_examples(contract.name):
            value = codec.from_record(contract.name, json_value)
            record = codec.to_record(value) if not isinstance(value, dict) else json_value
            timestamp = next((int(record[f]) for f in TIME_FIELDS if record.get(f) is not None), None)
            messages.append(
                SentMessage(
                    topic=contract.name,
                    example=example_name,
                    key=message_key(contract, record),
                    value=codec.encode(contract.name, value),
                    timestamp_ms=timestamp,
                )
            )
    return messages


def produce(bootstrap_servers: str, messages: list[SentMessage], *, idempotent: bool) -> None:
    producer = Producer(
        client_config(bootstrap_servers)
        | {
            "acks": "all",
            "enable.idempotence": idempotent,
            "linger.ms": 5,
        }
    )
    errors: list[str] = []

    def on_delivery(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))

    for m in messages:
        kwargs: dict[str, Any] = {"key": m.key, "value": m.value, "on_delivery": on_delivery}
        if m.timestamp_ms is not None:
            kwargs["timestamp"] = m.timestamp_ms
        producer.produce(m.topic, **kwargs)
    remaining = producer.flush(30)
    if remaining or errors:
        msg = f"{remaining} message(s) undelivered after 30 s; errors: {errors[:3]}"
        raise RuntimeError(msg)


def consume(
    bootstrap_servers: str,
    topics: list[str],
    expected: int,
    codec: Codec,
    *,
    timeout_s: float = 60.0,
    group_id: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> list[ReceivedMessage]:
    consumer = Consumer(
        client_config(bootstrap_servers)
        | {
            "group.id": group_id or f"ccpulse-smoke-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            # Tansu delays a join by session timeout / 2 (FIELD-NOTES): keep it short.
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
        }
    )
    received: list[ReceivedMessage] = []
    deadline = time.monotonic() + timeout_s
    try:
        consumer.subscribe(topics)
        while len(received) < expected and time.monotonic() < deadline:
            batch = consumer.consume(num_messages=500, timeout=0.5)
            for msg in batch:
                if msg.error():
                    continue
                topic, value = msg.topic(), msg.value()
                assert topic is not None and value is not None
                received.append(
                    ReceivedMessage(
                        topic=topic,
                        key=msg.key() or b"",
                        value=value,
                        decoded=codec.decode(topic, value),
                        partition=msg.partition() or 0,
                        offset=msg.offset() or 0,
                        timestamp_ms=msg.timestamp()[1],
                    )
                )
            if batch:
                consumer.commit(asynchronous=False)
                if on_progress:
                    on_progress(len(received))
    finally:
        consumer.close()
    return received
