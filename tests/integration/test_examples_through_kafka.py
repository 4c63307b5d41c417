"""Every example message through real Apache Kafka and back with a consumer group."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from streams.cli.smoke import build_messages, consume, produce
from streams.wire.codec import Codec
from streams.wire.topic_admin import apply_topics
from streams.wire.topic_contracts import load_topic_contracts

pytestmark = pytest.mark.kafka


def test_every_example_round_trips_through_apache_kafka(fresh_kafka: Any) -> None:
    """A broker of its own: every topic is read from its start, and other tests publish to
    the same topics on the shared broker (a plan on cc.staffing.plan, for one)."""
    kafka = fresh_kafka
    codec = Codec.pinned()
    apply_topics(kafka.bootstrap_servers)
    sent = build_messages(codec)
    assert len(sent) >= 2 * len(load_topic_contracts())
    produce(kafka.bootstrap_servers, sent, idempotent=True)

    received = consume(
        kafka.bootstrap_servers, sorted(load_topic_contracts()), expected=len(sent), codec=codec, timeout_s=60
    )

    assert Counter(m.topic for m in received) == Counter(m.topic for m in sent)
    by_value = {(m.topic, m.value): m for m in sent}
    for got in received:
        original = by_value[(got.topic, got.value)]  # same bytes came back
        assert got.key == original.key
        if original.timestamp_ms is not None:
            assert got.timestamp_ms == original.timestamp_ms
        assert got.decoded == codec.decode(original.topic, original.value)


def test_events_of_one_region_share_a_partition(kafka: Any) -> None:
    codec = Codec.pinned()
    apply_topics(kafka.bootstrap_servers)
    contact_messages = [m for m in build_messages(codec) if m.topic == "cc.contact.events"]
    produce(kafka.bootstrap_servers, contact_messages * 3, idempotent=True)
    received = consume(
        kafka.bootstrap_servers, ["cc.contact.events"], expected=3 * len(contact_messages), codec=codec
    )
    partitions_by_key: dict[bytes, set[int]] = {}
    for m in received:
        partitions_by_key.setdefault(m.key, set()).add(m.partition)
    assert partitions_by_key and all(len(p) == 1 for p in partitions_by_key.values())
