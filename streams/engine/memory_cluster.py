"""The state of an in-process Kafka: topics of partitions of records, committed offsets, and
consumer groups with the range assignor and an eager rebalance barrier.

One `MemoryCluster` per name (``memory://<name>``), shared by every client of that name in
the process. All state is guarded by one condition; consumers wait on it for records and
group changes. Clients live in streams/engine/memory_broker.py and memory_consumer.py.

Differences from Kafka. The contract suite (tests/contract/test_memory_broker.py) asserts only
what holds on both, which is what the engine relies on:
- records are appended when produced (no linger, no round trip); delivery reports are served
  in produce order (librdkafka serves them per partition batch: only the order within a
  partition is promised, and asserted); a consume() batch orders partitions differently;
- compacted topics keep every record (Kafka compacts eventually, so a reader must already
  cope with superseded records: restore reads the last one per partition);
- the log start offset is always 0 (no retention, no DeleteRecords);
- one broker (id 1): a replication factor above 1 is refused, as a one-node Kafka does;
- no coordinator start-up (a fresh Kafka answers NOT_COORDINATOR at first), no session
  timeout (an in-process member leaves by close(), by being garbage-collected, or by not
  polling within max.poll.interval.ms, as a live librdkafka client does), commits accepted
  from any member of any generation (the engine treats commits as hints only);
- a message to a topic that does not exist fails in its delivery report at once (librdkafka
  after topic.metadata.propagation.max.ms); configuration keys are not validated beyond the
  few read; the range assignor only; no topic patterns; no transactions.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import BrokerMetadata, ClusterMetadata, PartitionMetadata, TopicMetadata

from streams.engine.partitioner import partition_of

BROKER_ID = 1
TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME = 1, 2


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] | None
    timestamp: tuple[int, int]  # (type, epoch ms) as Message.timestamp() gives it


@dataclass
class Topic:
    name: str
    partitions: list[list[Record]]
    config: dict[str, str]


@dataclass
class Member:
    member_id: str
    topics: tuple[str, ...]
    last_poll: float
    max_poll_interval_s: float
    acked: int = 0  # the generation this member has revoked for (joined the barrier)


@dataclass
class Group:
    generation: int = 0
    members: dict[str, Member] = field(default_factory=dict)
    plan: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # of ``generation``


def kafka_error(code: int, reason: str) -> KafkaException:
    return KafkaException(KafkaError(code, reason))


class MemoryCluster:
    def __init__(self, name: str) -> None:
        self.name = name
        self.cluster_id = f"memory-{name}"
        self.changed = threading.Condition(threading.RLock())  # records appended, groups changed
        self.topics: dict[str, Topic] = {}
        self.committed: dict[tuple[str, str, int], int] = {}  # (group, topic, partition) -> offset
        self.groups: dict[str, Group] = {}

    # -- topics and records ------------------------------------------------------------------

    def create_topic(
        self, name: str, partitions: int, replication_factor: int, config: dict[str, str]
    ) -> None:
        with self.changed:
            if name in self.topics:
                raise kafka_error(KafkaError.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
            if partitions == -1:
                partitions = 1  # the broker default (num.partitions)
            if partitions < 1:
                raise kafka_error(KafkaError.INVALID_PARTITIONS, f"Number of partitions {partitions} < 1")
            if replication_factor not in (-1, 1):
                msg = f"Replication factor: {replication_factor} larger than available brokers: 1."
                raise kafka_error(KafkaError.INVALID_REPLICATION_FACTOR, msg)
            self.topics[name] = Topic(name, [[] for _ in range(partitions)], dict(config))
            for group in self.groups.values():  # subscribers of a topic created late get its partitions
                if any(name in m.topics for m in group.members.values()):
                    self._rebalance(group)
            self.changed.notify_all()

    def delete_topic(self, name: str) -> None:
        with self.changed:
            if self.topics.pop(name, None) is None:
                raise kafka_error(KafkaError.UNKNOWN_TOPIC_OR_PART, f"Topic '{name}' does not exist")
            self.changed.notify_all()

    def partition_count(self, topic: str) -> int:
        with self.changed:
            known = self.topics.get(topic)
            return len(known.partitions) if known is not None else 0

    def choose_partition(self, topic: str, key: bytes | None, partition: int) -> int:
        """librdkafka's default ``consistent_random``: CRC-32 of a non-empty key, else random."""
        count = self.partition_count(topic)
        if count == 0:
            raise kafka_error(KafkaError.UNKNOWN_TOPIC_OR_PART, f"Unknown topic {topic}")
        if partition >= 0:
            if partition >= count:
                raise kafka_error(KafkaError._UNKNOWN_PARTITION, f"{topic} [{partition}] unknown partition")
            return partition
        if key:
            return partition_of(key, count)
        return uuid.uuid4().int % count

    def append(self, topic: str, partition: int, record: Record) -> tuple[int, Record]:
        with self.changed:
            log = self.topics[topic].partitions[partition]
            if self.topics[topic].config.get("message.timestamp.type") == "LogAppendTime":
                record = Record(record.key, record.value, record.headers,
                                (TIMESTAMP_LOG_APPEND_TIME, int(time.time() * 1000)))  # fmt: skip
            log.append(record)
            self.changed.notify_all()
            return len(log) - 1, record

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        with self.changed:
            known = self.topics.get(topic)
            if known is None or not 0 <= partition < len(known.partitions):
                raise kafka_error(KafkaError.UNKNOWN_TOPIC_OR_PART, f"{topic} [{partition}] unknown")
            return 0, len(known.partitions[partition])

    def read(self, topic: str, partition: int, offset: int, limit: int) -> list[Record]:
        with self.changed:
            known = self.topics.get(topic)
            if known is None or partition >= len(known.partitions):
                return []
            return known.partitions[partition][offset : offset + limit]

    def commit(self, group_id: str, offsets: list[Any]) -> None:
        """Committed offsets of a group (TopicPartitions); any member may commit any partition."""
        with self.changed:
            for tp in offsets:
                self.committed[(group_id, tp.topic, tp.partition)] = tp.offset

    # -- consumer groups -----------------------------------------------------------------------

    def join(
        self, group_id: str, member_id: str, topics: tuple[str, ...], max_poll_interval_s: float
    ) -> None:
        with self.changed:
            group = self.groups.setdefault(group_id, Group())
            group.members[member_id] = Member(member_id, topics, time.monotonic(), max_poll_interval_s)
            self._rebalance(group)

    def leave(self, group_id: str, member_id: str) -> None:
        with self.changed:
            group = self.groups.get(group_id)
            if group is not None and group.members.pop(member_id, None) is not None:
                self._rebalance(group)

    def group_state(self, group_id: str, member_id: str, acked: int | None = None) -> tuple[int, bool]:
        """Heartbeat of a member: (generation, whether every member has revoked for it, so
        its plan may be handed out). ``acked``: this member revoked for that generation.
        Members that did not poll within their max.poll.interval.ms leave, as librdkafka's do."""
        with self.changed:
            group = self.groups[group_id]
            now = time.monotonic()
            member = group.members.get(member_id)
            if member is None:
                return -1, False  # removed for not polling: the consumer rejoins
            member.last_poll = now
            if acked is not None and acked == group.generation:
                member.acked = acked
                self.changed.notify_all()
            stale = [m for m in group.members.values() if now - m.last_poll > m.max_poll_interval_s]
            for gone in stale:
                del group.members[gone.member_id]
            if stale:
                self._rebalance(group)
            ready = all(m.acked == group.generation for m in group.members.values())
            return group.generation, ready

    def plan_of(self, group_id: str, member_id: str, generation: int) -> list[tuple[str, int]] | None:
        with self.changed:
            group = self.groups[group_id]
            if group.generation != generation:
                return None
            return list(group.plan.get(member_id, []))

    def _rebalance(self, group: Group) -> None:
        group.generation += 1
        group.plan = range_assignment(group.members, {n: len(t.partitions) for n, t in self.topics.items()})
        self.changed.notify_all()


def range_assignment(members: dict[str, Member], counts: dict[str, int]) -> dict[str, list[tuple[str, int]]]:
    """Kafka's RangeAssignor: per topic, its subscribers sorted by member id each take a
    contiguous range, the first ``partitions % subscribers`` one more; with co-partitioned
    topics partition p of every topic goes to the same member."""
    plan: dict[str, list[tuple[str, int]]] = {m: [] for m in members}
    topics = sorted({t for m in members.values() for t in m.topics if counts.get(t)})
    for topic in topics:
        subscribers = sorted(m for m, member in members.items() if topic in member.topics)
        per, extra = divmod(counts[topic], len(subscribers))
        start = 0
        for i, member_id in enumerate(subscribers):
            size = per + (1 if i < extra else 0)
            plan[member_id] += [(topic, p) for p in range(start, start + size)]
            start += size
    return plan


_CLUSTERS: dict[str, MemoryCluster] = {}
_CLUSTERS_LOCK = threading.Lock()


def cluster(name: str) -> MemoryCluster:
    """The cluster of that name in this process, created on first use."""
    with _CLUSTERS_LOCK:
        found = _CLUSTERS.get(name)
        if found is None:
            found = _CLUSTERS[name] = MemoryCluster(name)
        return found


def forget(name: str) -> None:
    """Drop a cluster (tests: a fresh one per test under a new name needs no forgetting)."""
    with _CLUSTERS_LOCK:
        _CLUSTERS.pop(name, None)


def metadata(memory: MemoryCluster, topic: str | None = None) -> ClusterMetadata:
    """list_topics() as librdkafka returns it; a missing topic asked for by name comes back with
    UNKNOWN_TOPIC_OR_PART (auto-creation is off, as on the project's brokers)."""
    result: Any = ClusterMetadata()  # its attributes are typed None in confluent-kafka's stubs
    result.cluster_id, result.controller_id, result.orig_broker_id = memory.cluster_id, BROKER_ID, BROKER_ID
    result.orig_broker_name = f"memory://{memory.name}/{BROKER_ID}"
    broker: Any = BrokerMetadata()
    broker.id, broker.host, broker.port = BROKER_ID, memory.name, 0
    result.brokers = {BROKER_ID: broker}
    with memory.changed:
        names = [topic] if topic is not None else sorted(memory.topics)
        for name in names:
            entry = TopicMetadata()
            entry.topic = name
            known = memory.topics.get(name)
            if known is None:
                entry.error = KafkaError(
                    KafkaError.UNKNOWN_TOPIC_OR_PART, "Broker: Unknown topic or partition"
                )
            else:
                for p in range(len(known.partitions)):
                    partition = PartitionMetadata()
                    partition.id, partition.leader = p, BROKER_ID
                    partition.replicas, partition.isrs = [BROKER_ID], [BROKER_ID]
                    entry.partitions[p] = partition
            result.topics[name] = entry
    return result
