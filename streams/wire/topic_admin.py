"""`ccpulse topics apply`: create or update every contract topic, idempotently.

Missing topics are created with the contract's partitions, replication factor and
configs; both the replication factor and min.insync.replicas are capped to what
the cluster can hold (a single local broker gets RF 1 / min ISR 1). Existing
topics get differing configs altered (incremental) and partitions increased when
the contract has more; partitions are never decreased (Kafka cannot), which is
reported. Brokers that cannot alter configs (Tansu) are reported, not fatal.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)

from streams.wire.kafka_config import KafkaSecurity, client_config
from streams.wire.topic_contracts import TopicContract, load_topic_contracts

TIMEOUT_S = 30.0


@dataclass(frozen=True)
class TopicChange:
    topic: str
    action: str  # created | updated | unchanged | failed
    partitions: int
    replication_factor: int
    detail: str = ""

    def as_row(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "action": self.action,
            "partitions": self.partitions,
            "replication": self.replication_factor,
            "detail": self.detail,
        }


def effective_configs(contract: TopicContract, replication_factor: int) -> dict[str, str]:
    configs = contract.topic_config()
    if "min.insync.replicas" in configs:
        configs["min.insync.replicas"] = str(min(int(configs["min.insync.replicas"]), replication_factor))
    return configs


def _admin(bootstrap_servers: str, security: KafkaSecurity | None) -> AdminClient:
    return AdminClient(client_config(bootstrap_servers, security) | {"socket.timeout.ms": 10000})


def describe_topics(
    bootstrap_servers: str, names: Iterable[str], security: KafkaSecurity | None = None
) -> dict[str, dict[str, Any]]:
    """Partitions, replication factor, ISR sizes and configs of existing topics, read from the broker."""
    admin = _admin(bootstrap_servers, security)
    metadata = admin.list_topics(timeout=TIMEOUT_S)
    wanted = [n for n in names if n in metadata.topics]
    described: dict[str, dict[str, Any]] = {}
    if not wanted:
        return described
    futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, n) for n in wanted])
    for resource, future in futures.items():
        entries = future.result(timeout=TIMEOUT_S)
        topic = metadata.topics[resource.name]
        partitions = topic.partitions
        described[resource.name] = {
            "partitions": len(partitions),
            "replication_factor": min(len(p.replicas) for p in partitions.values()),
            "min_isr_size": min(len(p.isrs) for p in partitions.values()),
            "configs": {name: entry.value for name, entry in entries.items()},
        }
    return described


def apply_topics(
    bootstrap_servers: str,
    contracts: Iterable[TopicContract] | None = None,
    broker_count: int | None = None,
    security: KafkaSecurity | None = None,
) -> list[TopicChange]:
    admin = _admin(bootstrap_servers, security)
    metadata = admin.list_topics(timeout=TIMEOUT_S)
    brokers = broker_count or len(metadata.brokers)
    wanted = list(contracts) if contracts is not None else list(load_topic_contracts().values())
    to_create = [c for c in wanted if c.name not in metadata.topics]
    changes: dict[str, TopicChange] = {}

    if to_create:
        new_topics = []
        for c in to_create:
            rf = min(c.replication_factor, brokers)
            new_topics.append(NewTopic(c.name, c.partitions, rf, config=effective_configs(c, rf)))
        for name, future in admin.create_topics(new_topics, request_timeout=TIMEOUT_S).items():
            contract = next(c for c in to_create if c.name == name)
            rf = min(contract.replication_factor, brokers)
            try:
                future.result(timeout=TIMEOUT_S)
                changes[name] = TopicChange(name, "created", contract.partitions, rf)
            except KafkaException as exc:
                changes[name] = TopicChange(name, "failed", 0, 0, str(exc.args[0]))

    existing = [c for c in wanted if c.name in metadata.topics]
    if existing:
        current = _current_configs(admin, [c.name for c in existing])
        for contract in existing:
            topic = metadata.topics[contract.name]
            changes[contract.name] = _update(admin, contract, topic, current.get(contract.name), brokers)
    _wait_until_visible(admin, {c.topic: c.partitions for c in changes.values() if c.action != "failed"})
    return [changes[c.name] for c in wanted]


def wait_until_visible(
    bootstrap_servers: str, partitions: dict[str, int], security: KafkaSecurity | None = None
) -> None:
    """Block until every topic is visible with its partitions and leaders (see below)."""
    _wait_until_visible(_admin(bootstrap_servers, security), partitions)


def _wait_until_visible(admin: AdminClient, partitions: dict[str, int]) -> None:
    """Wait until the broker's metadata shows every topic with its partitions and their leaders.

    CreateTopics and CreatePartitions answer once the controller has committed; the
    brokers' metadata caches follow a little later (0.4 s measured after creating
    the contract topics), and a producer or describe_topics in between sees the old
    partition count.
    """
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        topics = admin.list_topics(timeout=TIMEOUT_S).topics
        lagging = [
            name
            for name, count in partitions.items()
            if name not in topics
            or len(topics[name].partitions) < count
            or any(p.leader < 0 for p in topics[name].partitions.values())
        ]
        if not lagging:
            return
        if time.monotonic() > deadline:
            msg = f"topics {', '.join(lagging)} not visible with all partitions after {TIMEOUT_S:.0f} s"
            raise KafkaException(msg)
        time.sleep(0.1)


def _current_configs(admin: AdminClient, names: list[str]) -> dict[str, dict[str, str] | None]:
    result: dict[str, dict[str, str] | None] = {}
    futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, n) for n in names])
    for resource, future in futures.items():
        try:
            entries = future.result(timeout=TIMEOUT_S)
            result[resource.name] = {name: str(entry.value) for name, entry in entries.items()}
        except KafkaException:
            result[resource.name] = None  # broker cannot describe configs (e.g. Tansu)
    return result


def _update(
    admin: AdminClient, contract: TopicContract, topic: Any, configs: dict[str, str] | None, brokers: int
) -> TopicChange:
    partitions = len(topic.partitions)
    rf = min(len(p.replicas) for p in topic.partitions.values()) if topic.partitions else 0
    notes: list[str] = []
    changed = False
    if contract.partitions > partitions:
        future = admin.create_partitions([NewPartitions(contract.name, contract.partitions)])[contract.name]
        future.result(timeout=TIMEOUT_S)
        notes.append(f"partitions {partitions} -> {contract.partitions}")
        partitions, changed = contract.partitions, True
    elif contract.partitions < partitions:
        notes.append(f"has {partitions} partitions, contract says {contract.partitions}: Kafka cannot shrink")
    wanted = effective_configs(contract, min(contract.replication_factor, brokers, rf or brokers))
    if configs is None:
        notes.append("broker cannot describe configs; not altered")
    else:
        differing = {k: v for k, v in wanted.items() if configs.get(k) != v}
        if differing:
            resource = ConfigResource(
                ConfigResource.Type.TOPIC,
                contract.name,
                incremental_configs=[
                    ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                    for k, v in differing.items()
                ],
            )
            try:
                admin.incremental_alter_configs([resource])[resource].result(timeout=TIMEOUT_S)
                notes.append("configs " + ", ".join(f"{k}={v}" for k, v in sorted(differing.items())))
                changed = True
            except KafkaException as exc:
                notes.append(f"cannot alter configs: {exc.args[0]}")
    return TopicChange(contract.name, "updated" if changed else "unchanged", partitions, rf, "; ".join(notes))
