"""The real local services start, answer, and apply the topic contracts."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic
from prometheus_client import CollectorRegistry, Counter, start_http_server

from streams.services.base import free_port, pid_alive, port_is_free
from streams.services.clickhouse import ClickHouseServer
from streams.services.kafka import KafkaCluster
from streams.services.prometheus import PrometheusServer
from streams.services.tansu import TansuBroker
from streams.wire.topic_admin import apply_topics, describe_topics, wait_until_visible
from streams.wire.topic_contracts import load_topic_contracts


@pytest.mark.kafka
def test_kafka_broker_is_a_kraft_node(kafka: KafkaCluster) -> None:
    admin = kafka.admin()  # keep a reference until the future resolves (FIELD-NOTES)
    cluster = admin.describe_cluster().result(timeout=10)
    assert len(cluster.nodes) == 1
    assert cluster.controller is not None
    assert kafka.server_version().startswith("4.")


@pytest.mark.kafka
def test_topics_apply_creates_every_contract_topic_with_its_configs(kafka: KafkaCluster) -> None:
    contracts = load_topic_contracts()
    changes = apply_topics(kafka.bootstrap_servers)
    assert {c.topic for c in changes} == set(contracts)
    assert all(c.action in ("created", "unchanged") for c in changes), changes

    described = describe_topics(kafka.bootstrap_servers, contracts)
    assert set(described) == set(contracts)
    for name, contract in contracts.items():
        actual = described[name]
        assert actual["partitions"] == contract.partitions, name
        assert actual["replication_factor"] == 1, name  # capped to the single broker
        assert actual["configs"]["cleanup.policy"] == contract.cleanup_policy, name
        assert actual["configs"]["retention.ms"] == str(contract.retention_ms), name
        assert actual["configs"]["min.insync.replicas"] == "1", name  # capped to RF
        for key, value in contract.config.items():
            if key != "min.insync.replicas":
                assert actual["configs"][key] == value, (name, key)


@pytest.mark.kafka
def test_topics_apply_is_idempotent_and_grows_partitions(kafka: KafkaCluster) -> None:
    apply_topics(kafka.bootstrap_servers)
    again = apply_topics(kafka.bootstrap_servers)
    assert [c.action for c in again] == ["unchanged"] * len(again), again

    # Growing is done on a copy of cc.alerts under a name of its own: the session broker is
    # shared, and the contract test above must find every contract topic as the contract says
    # whatever order the workers run the tests in (a grown cc.alerts once failed it under xdist).
    name = f"cc.alerts.grow-{uuid.uuid4().hex[:8]}"
    contract = dataclasses.replace(load_topic_contracts()["cc.alerts"], name=name)
    (created,) = apply_topics(kafka.bootstrap_servers, [contract])
    assert created.action == "created"
    grown = dataclasses.replace(contract, partitions=contract.partitions + 2, retention_ms=86_400_000)
    (change,) = apply_topics(kafka.bootstrap_servers, [grown])
    assert change.action == "updated"
    described = describe_topics(kafka.bootstrap_servers, [name])[name]
    assert described["partitions"] == contract.partitions + 2
    assert described["configs"]["retention.ms"] == "86400000"
    # the contract again: retention restored, partitions cannot shrink and that is reported
    (back,) = apply_topics(kafka.bootstrap_servers, [contract])
    assert "cannot shrink" in back.detail
    assert describe_topics(kafka.bootstrap_servers, [name])[name]["configs"]["retention.ms"] == str(
        contract.retention_ms
    )


@pytest.mark.clickhouse
def test_clickhouse_server_is_18_16_and_stores_rows(clickhouse_server: ClickHouseServer) -> None:
    assert clickhouse_server.version.startswith("18.16")
    client = clickhouse_server.client()
    table = f"t_{uuid.uuid4().hex[:8]}"
    try:
        client.execute(f"CREATE TABLE {table} (region String, n UInt32) ENGINE = MergeTree ORDER BY region")
        client.execute(f"INSERT INTO {table} (region, n) VALUES", [("RU-MOW", 3), ("RU-KAM", 4)])
        assert client.execute(f"SELECT count(), sum(n) FROM {table}") == [(2, 7)]
    finally:
        client.disconnect()


@pytest.mark.prometheus
def test_prometheus_scrapes_an_exporter(
    prometheus_factory: Callable[[Sequence[str]], PrometheusServer],
) -> None:
    registry = CollectorRegistry()
    counter = Counter("ccpulse_test_events", "events seen by the test", registry=registry)
    counter.inc(42)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        prometheus = prometheus_factory([f"127.0.0.1:{port}"])
        deadline = time.monotonic() + 20
        result: list[dict[str, object]] = []
        while time.monotonic() < deadline and not result:
            result = prometheus.query("ccpulse_test_events_total")
            time.sleep(0.5)
        assert result, "Prometheus never scraped the exporter"
        assert float(result[0]["value"][1]) == 42.0  # type: ignore[index]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.tansu
def test_tansu_applies_topics_and_round_trips(tansu: TansuBroker) -> None:
    changes = apply_topics(tansu.bootstrap_servers)
    assert {c.topic for c in changes} == set(load_topic_contracts())
    producer = Producer({"bootstrap.servers": tansu.bootstrap_servers, "enable.idempotence": False})
    producer.produce("cc.alerts", key=b"k", value=b"hello tansu")
    assert producer.flush(10) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": tansu.bootstrap_servers,
            "group.id": f"t-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    try:
        consumer.subscribe(["cc.alerts"])
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        while b"hello tansu" not in values and time.monotonic() < deadline:
            values += [m.value() for m in consumer.consume(10, timeout=0.5) if not m.error()]
        assert b"hello tansu" in values
    finally:
        consumer.close()


@pytest.mark.kafka
def test_three_broker_cluster_replicates_and_survives_a_node(kafka_cluster: KafkaCluster) -> None:
    admin = kafka_cluster.admin()
    assert len(admin.describe_cluster().result(timeout=10).nodes) == 3
    topic = f"rf3-{uuid.uuid4().hex[:6]}"
    admin.create_topics([NewTopic(topic, 3, 3, config={"min.insync.replicas": "2"})])[topic].result(
        timeout=30
    )
    wait_until_visible(kafka_cluster.bootstrap_servers, {topic: 3})  # metadata follows the controller
    described = describe_topics(kafka_cluster.bootstrap_servers, [topic])[topic]
    assert described["replication_factor"] == 3

    deadline = time.monotonic() + 30
    while describe_topics(kafka_cluster.bootstrap_servers, [topic])[topic]["min_isr_size"] < 3:
        assert time.monotonic() < deadline, "ISR never reached 3"
        time.sleep(0.5)

    kafka_cluster.kill_node(2)
    producer = Producer(
        {
            "bootstrap.servers": kafka_cluster.bootstrap_servers,
            "acks": "all",
            "enable.idempotence": True,
            "log_level": 0,
        }
    )
    for i in range(100):
        producer.produce(topic, key=str(i).encode(), value=b"x")
    assert producer.flush(60) == 0  # 2 in-sync replicas remain: acks=all still succeeds
    rejoin_s = kafka_cluster.start_node(2)
    assert rejoin_s < 60


@pytest.mark.clickhouse
def test_stop_frees_pid_and_port(tmp_path: Path) -> None:
    server = ClickHouseServer(tmp_path / "ch").start()
    pid, port = server.pid, server.tcp_port
    assert pid_alive(pid) and not port_is_free(port)
    server.stop()
    server.stop()  # idempotent
    assert not pid_alive(pid)
    assert port_is_free(port)
