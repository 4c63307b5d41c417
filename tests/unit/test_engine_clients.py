"""streams/engine/clients.py picks the memory broker for memory:// and confluent-kafka otherwise."""

from __future__ import annotations

import confluent_kafka
import pytest
from confluent_kafka.admin import AdminClient as KafkaAdmin

from streams.engine import clients, memory_broker, memory_cluster

pytestmark = pytest.mark.unit


def test_memory_bootstrap_gives_the_memory_clients_of_that_name() -> None:
    config = {"bootstrap.servers": "memory://clients-test", "group.id": "g"}
    try:
        made = clients.producer(config), clients.consumer(config), clients.admin(config)
        assert [type(m) for m in made] == [
            memory_broker.Producer,
            memory_broker.Consumer,
            memory_broker.AdminClient,
        ]
        assert memory_broker.clients(config) == (
            memory_broker.Producer,
            memory_broker.Consumer,
            memory_broker.AdminClient,
        )
        made[1].close()
    finally:
        memory_cluster.forget("clients-test")


def test_other_bootstraps_give_confluent_kafka() -> None:
    config = {"bootstrap.servers": "127.0.0.1:9"}
    assert memory_broker.clients(config) == (confluent_kafka.Producer, confluent_kafka.Consumer, KafkaAdmin)


def test_a_memory_bootstrap_without_a_name_is_refused() -> None:
    with pytest.raises(ValueError, match="memory://<name>"):
        clients.admin({"bootstrap.servers": "memory://"})
