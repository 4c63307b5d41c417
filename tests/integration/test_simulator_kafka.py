"""One simulated hour of a few regions through real Apache Kafka: every message comes back,
keyed by region, with the Kafka timestamp equal to the event time."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Consumer

from streams.domain.errors import InvalidEvent
from streams.domain.regions import region_codes
from streams.simulator import run
from streams.simulator.output import event_id_prefix
from streams.wire.codec import Codec
from streams.wire.topic_admin import apply_topics

pytestmark = pytest.mark.kafka

TOPICS = ["cc.agent.events", "cc.contact.events", "cc.survey.events"]
SEED = 20_261_124  # its event-id prefix tells this run's messages from other tests' messages


def consume_run(bootstrap: str, prefix: str, expected: int, timeout_s: float = 120.0) -> list[Any]:
    codec = Codec.pinned(known_regions=region_codes())
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"simulator-test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    received: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        consumer.subscribe(TOPICS)
        while len(received) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                if msg.error():
                    continue
                try:
                    event = codec.decode(msg.topic(), msg.value())
                except InvalidEvent:  # other tests put malformed messages on the shared topics
                    continue
                if event.event_id.startswith(prefix):
                    received.append((msg.topic(), msg.key(), msg.timestamp()[1], event))
    finally:
        consumer.close()
    return received


def test_one_simulated_hour_round_trips_through_apache_kafka(kafka: Any) -> None:
    apply_topics(kafka.bootstrap_servers)
    summary = run(
        regions=("RU-MOW", "RU-PRI", "RU-KAM"),
        duration_s=3600,
        seed=SEED,
        out="kafka",
        bootstrap_servers=kafka.bootstrap_servers,
        start=datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=1),
    )
    assert summary.messages > 3_000

    received = consume_run(kafka.bootstrap_servers, event_id_prefix(SEED), summary.messages)

    assert len(received) == summary.messages
    assert Counter(topic for topic, *_ in received) == Counter(summary.by_topic)
    assert len({event.event_id for *_, event in received}) == summary.messages
    for _topic, key, timestamp_ms, event in received:
        assert key.decode() == event.region
        assert timestamp_ms == event.event_time_ms
