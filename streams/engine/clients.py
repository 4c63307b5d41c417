"""Where the engine gets its Kafka clients: the memory broker's for ``memory://<name>``
bootstrap servers (unit tests; tests/contract/test_memory_broker.py shows it behaves like
Apache Kafka where the engine relies on it), confluent-kafka's otherwise."""

from __future__ import annotations

from typing import Any

from streams.engine.memory_broker import clients


def producer(config: dict[str, Any]) -> Any:
    return clients(config)[0](config)


def consumer(config: dict[str, Any]) -> Any:
    return clients(config)[1](config)


def admin(config: dict[str, Any]) -> Any:
    return clients(config)[2](config)
