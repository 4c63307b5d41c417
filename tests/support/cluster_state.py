"""What a multi-broker cluster and the history database say during broker faults
(tests/integration/test_broker_faults.py): ISR and leaders, replication settings as every
broker reports them, and the event ids history holds."""

from __future__ import annotations

import time

from confluent_kafka import KafkaException

from streams.services.clickhouse import ClickHouseServer
from streams.services.kafka import KafkaCluster
from streams.wire.topic_admin import describe_topics
from streams.wire.topics import INPUT_TOPICS
from support.lag_probe import TP
from support.waiting import wait_until


def under_replicated(cluster: KafkaCluster) -> list[str]:
    topics = cluster.admin(quiet=True).list_topics(timeout=5).topics
    return [
        f"{name}[{p}]"
        for name, topic in topics.items()
        for p, partition in topic.partitions.items()
        if len(partition.isrs) < len(partition.replicas) or partition.leader < 0
    ]


def wait_isr_full(cluster: KafkaCluster, timeout_s: float = 90.0) -> float:
    began = time.monotonic()
    while True:
        try:
            lagging = under_replicated(cluster)
        except Exception as exc:  # metadata request during a restart
            lagging = [str(exc)]
        if not lagging:
            return time.monotonic() - began
        assert time.monotonic() - began < timeout_s, f"ISR not full after {timeout_s:.0f} s: {lagging[:5]}"
        time.sleep(0.25)


def leaders(cluster: KafkaCluster, topic: str) -> dict[int, int]:
    """partition -> leader broker id."""
    topics = cluster.admin(quiet=True).list_topics(timeout=5).topics
    return {p: partition.leader for p, partition in topics[topic].partitions.items()}


def led_by(cluster: KafkaCluster, node_id: int, high: dict[TP, int]) -> list[TP]:
    """The input partitions that carry traffic and have ``node_id`` as their leader."""
    return [
        (topic, p)
        for topic in INPUT_TOPICS
        for p, leader in leaders(cluster, topic).items()
        if leader == node_id and high.get((topic, p), 0) > 0
    ]


def history_ids(server: ClickHouseServer, table: str, database: str) -> tuple[int, set[str]]:
    client = server.client()
    try:
        ((rows,),) = client.execute(f"SELECT count() FROM {database}.{table}")
        ids = {row[0] for row in client.execute(f"SELECT DISTINCT event_id FROM {database}.{table}")}
    finally:
        client.disconnect()
    return int(rows), ids


def dead_letters_in_history(server: ClickHouseServer, database: str) -> int:
    client = server.client()
    try:
        unique_key = "uniqExact(original_topic, original_partition, original_offset)"
        ((unique,),) = client.execute(f"SELECT {unique_key} FROM {database}.dead_letters")
    finally:
        client.disconnect()
    return int(unique)


def replication(cluster: KafkaCluster, group: str) -> dict[str, tuple[int, str | None]]:
    """Topic -> (replication factor, min.insync.replicas) of the inputs and the worker's changelog,
    as a new admin client reads them (it may ask any of the 3 brokers)."""
    names = [*INPUT_TOPICS, f"{group}-changelog"]
    described = describe_topics(cluster.bootstrap_servers, names)
    return {
        n: (d["replication_factor"], d["configs"].get("min.insync.replicas")) for n, d in described.items()
    }


def assert_topics_replicated(cluster: KafkaCluster, group: str) -> None:
    """RF 3 and min.insync.replicas 2 on the input topics and the worker's changelog. A topic just
    created is known to the brokers one by one (the last clean-clone runs failed on a broker that
    did not know the changelog yet), so this waits, with a deadline, until every broker asked
    reports all of them with the right settings (a wrong setting fails with what was seen)."""
    expected = dict.fromkeys([*INPUT_TOPICS, f"{group}-changelog"], (3, "2"))
    wait_until(
        lambda: replication(cluster, group) == expected, 60,
        "RF 3 and min.insync.replicas 2 on the inputs and the changelog, as every broker asked reports them",
        seen=lambda: replication(cluster, group),
        retry_on=(KafkaException, ValueError, TimeoutError),  # ValueError: listed before its partitions
    )  # fmt: skip
