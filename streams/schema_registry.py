"""Schema Registry port and its adapter over confluent-kafka's SchemaRegistryClient.

The codec needs two calls: register (or find) a schema under a subject, and list
the versions of a subject so that older writers stay decodable.
"""

from __future__ import annotations

from typing import Protocol


class SchemaRegistry(Protocol):
    """The two Schema Registry calls the codec needs (a port; see ConfluentSchemaRegistry)."""

    def register(self, subject: str, schema_str: str) -> int: ...

    def versions(self, subject: str) -> list[tuple[int, str]]: ...


class ConfluentSchemaRegistry:
    """SchemaRegistry over confluent_kafka's SchemaRegistryClient."""

    def __init__(self, url: str) -> None:
        try:
            from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
        except ImportError as exc:  # the client needs the confluent-kafka[schemaregistry] extra
            msg = f"cannot use the Schema Registry at {url}: {exc} (install confluent-kafka[schemaregistry])"
            raise RuntimeError(msg) from exc
        self._schema_type = Schema
        self._client = SchemaRegistryClient({"url": url})

    def register(self, subject: str, schema_str: str) -> int:
        return int(self._client.register_schema(subject, self._schema_type(schema_str, "AVRO")))

    def versions(self, subject: str) -> list[tuple[int, str]]:
        found = []
        for version in self._client.get_versions(subject):
            registered = self._client.get_version(subject, version)
            found.append((int(registered.schema_id or 0), str(registered.schema.schema_str)))
        return found
