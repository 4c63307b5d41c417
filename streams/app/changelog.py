"""KPI state checkpoints in a compacted Kafka changelog topic.

``<app id>-changelog`` has the input topics' partition count; the checkpoint of
partition p (of all input topics together) is one record (key ``<app id>|<p>``) in
changelog partition p. One record per checkpoint makes a checkpoint atomic: a reader sees the
whole state with its position or the previous one. Compaction keeps the latest per key;
restore reads the last record of the partition, so it costs one fetch, not a replay.
A worker on another host restores the same way, which is what makes rebalancing and
scaling out exact.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from streams.app import state as state_codec
from streams.app.state import PartitionState

log = logging.getLogger("ccpulse.app.changelog")
MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024
_LOOKBACK = 5  # records read back from the end (an end offset may point past control records)


def changelog_topic(app_id: str) -> str:
    return f"{app_id}-changelog"


def checkpoint_key(app_id: str, partition: int) -> bytes:
    return f"{app_id}|{partition}".encode()


def ensure_changelog_topic(
    admin: AdminClient, input_topics: tuple[str, ...], app_id: str, replication_factor: int | None = None
) -> str:
    """Check the input topics are co-partitioned; create the changelog topic when missing."""
    metadata = admin.list_topics(timeout=10)
    counts = {}
    for topic in input_topics:
        source = metadata.topics.get(topic)
        if source is None or source.error is not None:
            msg = f"input topic {topic} does not exist; run `ccpulse topics apply` first"
            raise RuntimeError(msg)
        counts[topic] = len(source.partitions)
    if len(set(counts.values())) != 1:
        msg = f"input topics must be co-partitioned (same partition count, key = region); found {counts}"
        raise RuntimeError(msg)
    name = changelog_topic(app_id)
    existing = metadata.topics.get(name)
    partitions = next(iter(counts.values()))
    if existing is not None and existing.error is None:
        if len(existing.partitions) != partitions:
            msg = f"{name} has {len(existing.partitions)} partitions, the input topics {partitions}"
            raise RuntimeError(msg)
        return name
    rf = replication_factor or min(3, len(metadata.brokers))
    config = {
        "cleanup.policy": "compact",
        "max.message.bytes": str(MAX_CHECKPOINT_BYTES),
        "min.insync.replicas": str(min(2, rf)),
        "segment.ms": "600000",
    }
    future = admin.create_topics([NewTopic(name, partitions, rf, config=config)], operation_timeout=30)[name]
    try:
        future.result()
        log.info("created changelog topic %s (%d partitions, RF %d)", name, partitions, rf)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
    return name


_SETTLING = (  # a new topic's leaders are being elected: the wrapper does not flag these retriable
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
)


def _watermarks(consumer: Consumer, tp: TopicPartition, timeout_s: float = 30.0) -> tuple[int, int]:
    """Low and high offsets; retried while a new topic's leaders settle (NOT_LEADER for ~1 s here)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=5)
            return int(low), int(high)
        except KafkaException as exc:
            error = exc.args[0]
            settling = error.retriable() or error.code() in _SETTLING
            if not settling or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def restore(consumer_config: dict[str, Any], app_id: str, partitions: list[int]) -> dict[int, PartitionState]:
    """The last checkpoint of each partition that has one (one consumer for all of them)."""
    changelog = changelog_topic(app_id)
    config = {
        **consumer_config,
        "group.id": f"{changelog}-restore",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "fetch.message.max.bytes": MAX_CHECKPOINT_BYTES,
    }
    consumer = Consumer(config)
    found: dict[int, bytes] = {}
    try:
        starts = []
        for p in partitions:
            low, high = _watermarks(consumer, TopicPartition(changelog, p))
            if high > low:
                starts.append(TopicPartition(changelog, p, max(low, high - _LOOKBACK)))
        if not starts:
            return {}
        consumer.assign(starts)
        pending = {tp.partition for tp in starts}
        deadline = time.monotonic() + 60
        while pending:
            if time.monotonic() > deadline:
                msg = f"timed out reading checkpoints of partitions {sorted(pending)} from {changelog}"
                raise RuntimeError(msg)
            message = consumer.poll(1.0)
            if message is None:
                continue
            error, p = message.error(), int(message.partition())  # type: ignore[arg-type, unused-ignore]  # confluent-kafka < 2.13 (the bench extra) types it
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(error)
                pending.discard(p)
                continue
            if message.key() == checkpoint_key(app_id, p) and message.value():
                found[p] = message.value()  # type: ignore[assignment, unused-ignore]
    finally:
        consumer.close()
    restored = {}
    for p, data in found.items():
        state = state_codec.loads(data)
        if state.partition != p:
            msg = f"checkpoint in {changelog}[{p}] is for partition {state.partition}"
            raise RuntimeError(msg)
        restored[p] = state
    return restored
