"""cc.staffing.plan on real Apache Kafka: `topics apply` creates it compacted as the
contract says; a published plan reads back with a plain consumer and the project's codec,
keyed region|channel|interval_start_ms, one record per interval, with the publication
time as the Kafka timestamp; a republished interval is the later record of its key."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from support.waiting import wait_until

from streams.domain.shift_plan import INTERVAL_MS, PlanInterval
from streams.planning.publish import interval_of, plan_key, publish_plan
from streams.wire.codec import Codec
from streams.wire.topic_admin import apply_topics, describe_topics
from streams.wire.topic_contracts import load_topic_contracts
from streams.wire.topics import PLAN_TOPIC

pytestmark = pytest.mark.kafka
START = 1_778_490_000_000


def read_all(bootstrap: str, codec: Codec, expected: int) -> list[tuple[bytes, dict[str, Any], int]]:
    """Every record of every partition from the beginning (no consumer group: a global read)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(PLAN_TOPIC, timeout=10).topics[PLAN_TOPIC].partitions
        consumer.assign([TopicPartition(PLAN_TOPIC, p, -2) for p in partitions])
        got: list[tuple[bytes, dict[str, Any], int]] = []

        def read() -> bool:
            for m in consumer.consume(500, 0.5):
                if m.error() is None:
                    got.append((m.key() or b"", codec.decode(PLAN_TOPIC, m.value()), m.timestamp()[1]))
            return len(got) >= expected

        wait_until(read, 60, f"{expected} records on {PLAN_TOPIC}", seen=lambda: len(got))
        return got
    finally:
        consumer.close()


def test_the_plan_topic_is_compacted_and_a_published_plan_reads_back(fresh_kafka: Any) -> None:
    bootstrap = fresh_kafka.bootstrap_servers
    apply_topics(bootstrap)
    contract = load_topic_contracts()[PLAN_TOPIC]
    described = describe_topics(bootstrap, [PLAN_TOPIC])[PLAN_TOPIC]
    assert described["partitions"] == contract.partitions == 3
    configs = described["configs"]
    assert configs["cleanup.policy"] == "compact"
    assert configs["retention.ms"] == "-1"
    assert configs["min.cleanable.dirty.ratio"] == "0.1" and configs["segment.ms"] == "3600000"

    codec = Codec.pinned()
    plan = [
        PlanInterval("p1", region, channel, START + i * INTERVAL_MS, 80.0, 140.0, 12.5, 13 + i)
        for region in ("RU-MOW", "RU-KAM")
        for channel in ("VOICE", "EMAIL")
        for i in range(4)
    ]
    assert (
        publish_plan({"bootstrap.servers": bootstrap}, codec, plan, published_at_ms=START - 3_600_000) == 16
    )
    republished = [PlanInterval("p2", "RU-MOW", "VOICE", START, 90.0, 150.0, 14.0, 11)]
    publish_plan({"bootstrap.servers": bootstrap}, codec, republished, published_at_ms=START - 60_000)

    records = read_all(bootstrap, codec, 17)
    assert len(records) == 17
    latest: dict[bytes, tuple[dict[str, Any], int]] = {}
    for key, value, timestamp in records:  # one partition per key, so this is the topic's order
        assert key == plan_key(value["region"], value["channel"], value["interval_start_ms"])
        assert timestamp == value["published_at_ms"]
        latest[key] = (value, timestamp)
    assert len(latest) == 16  # what compaction keeps: one record per interval
    mow_first = latest[f"RU-MOW|VOICE|{START}".encode()][0]
    assert interval_of(mow_first) == republished[0]
    assert mow_first["published_at_ms"] == START - 60_000
    others = {interval_of(v) for k, (v, _t) in latest.items() if k != f"RU-MOW|VOICE|{START}".encode()}
    assert others == set(plan[1:])
