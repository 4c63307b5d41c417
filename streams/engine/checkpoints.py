"""State checkpoints in a compacted Kafka changelog topic (the engine's, for any job).

``<app id>-changelog`` has the input topics' partition count; the checkpoint of
partition p (of all input topics together) is one record (key ``<app id>|<p>``, the value
is the job's own serialised state with its positions: streams/jobs/state.py) in
changelog partition p. One record per checkpoint makes a checkpoint atomic: a reader sees the
whole state with its position or the previous one. Compaction keeps the latest per key;
restore reads the last record of the partition, so it costs one fetch, not a replay.
A worker on another host restores the same way, which is what makes rebalancing and
scaling out exact.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from streams.engine.read_to_end import read_to_end

log = logging.getLogger("ccpulse.engine.checkpoints")
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


def restore(consumer_config: dict[str, Any], app_id: str, partitions: list[int]) -> dict[int, bytes]:
    """The last checkpoint record of each partition that has one (one reader for all of them).
    The last few offsets are read first (an end offset may point past transaction markers);
    a partition whose last few offsets hold no committed checkpoint (aborted transactions of
    a fenced worker) is read from its beginning: compaction keeps that short."""
    changelog = changelog_topic(app_id)
    extra = {"fetch.message.max.bytes": MAX_CHECKPOINT_BYTES}
    found: dict[int, bytes] = {}

    def take(last: int | None, numbers: list[int]) -> None:
        for message in read_to_end(consumer_config, changelog, numbers, last=last, extra=extra):
            p = int(message.partition())  # type: ignore[arg-type, unused-ignore]
            if message.key() == checkpoint_key(app_id, p) and message.value():
                found[p] = message.value()  # type: ignore[assignment, unused-ignore]

    take(_LOOKBACK, partitions)
    if missing := [p for p in partitions if p not in found]:  # read_to_end skips empty partitions
        take(None, missing)
    return found
