"""Schema Registry port and its adapter over confluent-kafka's SchemaRegistryClient.

The codec needs three calls: register (or find) a schema under a subject, list the
versions of a subject so that older writers stay decodable, and fetch the schema of
an id it has not seen, so that a newer writer registered after the consumer started
is decodable too (Confluent deserializers do the same).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

REQUEST_TIMEOUT_S = 10


class SchemaRegistry(Protocol):
    """The Schema Registry calls the codec needs (a port; see ConfluentSchemaRegistry)."""

    def register(self, subject: str, schema_str: str) -> int: ...

    def versions(self, subject: str) -> list[tuple[int, str]]: ...

    def schema(self, schema_id: int) -> str | None:
        """The Avro schema registered under ``schema_id`` (any subject), None when there is none."""
        ...

    def set_compatibility(self, level: str, subject: str | None = None) -> str:
        """Set the compatibility level of ``subject`` (None: the registry's global default)."""
        ...


class ConfluentSchemaRegistry:
    """SchemaRegistry over confluent_kafka's SchemaRegistryClient."""

    def __init__(self, url: str) -> None:
        try:
            from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
        except ImportError as exc:  # the client needs the confluent-kafka[schemaregistry] extra
            msg = f"cannot use the Schema Registry at {url}: {exc} (install confluent-kafka[schemaregistry])"
            raise RuntimeError(msg) from exc
        self._schema_type = Schema
        # A bounded timeout: the client's default waits forever, and a registry that leaves
        # a request unanswered (seen with Apicurio, now and then) is then retried instead.
        self._client = SchemaRegistryClient({"url": url, "timeout": REQUEST_TIMEOUT_S})

    def register(self, subject: str, schema_str: str) -> int:
        return int(self._client.register_schema(subject, self._schema_type(schema_str, "AVRO")))

    def versions(self, subject: str) -> list[tuple[int, str]]:
        found = []
        for version in self._client.get_versions(subject):
            registered = self._client.get_version(subject, version)
            found.append((int(registered.schema_id or 0), str(registered.schema.schema_str)))
        return found

    def schema(self, schema_id: int) -> str | None:
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            found = self._client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:  # 40403: no schema with this id
                return None
            raise  # an unreachable registry is an outage, not bad input
        if (found.schema_type or "AVRO") != "AVRO":
            return None
        return str(found.schema_str)

    def close(self) -> None:
        """Close the HTTP session (a codec keeps its registry open for look-ups)."""
        self._client.close()

    def set_compatibility(self, level: str, subject: str | None = None) -> str:
        answer = self._client.set_compatibility(subject_name=subject, level=level)
        if isinstance(answer, dict):  # the body of PUT /config: {"compatibility": ..., ...}
            answer = answer.get("compatibility") or answer.get("compatibilityLevel")
        return str(answer)


class InMemorySchemaRegistry:
    """The SchemaRegistry port in memory, for tests and single-process tools: one id space
    for all subjects (ids from 1, as a fresh registry), registering an equal schema again
    returns its id. ``lookups`` counts the calls of ``schema`` (once per unseen id)."""

    def __init__(self) -> None:
        self.subjects: dict[str, list[tuple[int, str]]] = {}
        self.compatibility: dict[str | None, str] = {}
        self.lookups = 0
        self._next_id = 0

    def register(self, subject: str, schema_str: str) -> int:
        for schema_id, text in self.subjects.get(subject, []):
            if json.loads(text) == json.loads(schema_str):
                return schema_id
        self._next_id += 1
        self.subjects.setdefault(subject, []).append((self._next_id, schema_str))
        return self._next_id

    def versions(self, subject: str) -> list[tuple[int, str]]:
        return list(self.subjects.get(subject, []))

    def schema(self, schema_id: int) -> str | None:
        self.lookups += 1
        found = (text for versions in self.subjects.values() for sid, text in versions if sid == schema_id)
        return next(found, None)

    def set_compatibility(self, level: str, subject: str | None = None) -> str:
        self.compatibility[subject] = level
        return level


@dataclass(frozen=True)
class Registered:
    """One subject after `register_contract_schemas`: its current id and compatibility level."""

    subject: str
    schema_id: int
    versions: int
    compatibility: str

    def as_row(self) -> dict[str, object]:
        return {"subject": self.subject, "schema_id": self.schema_id, "versions": self.versions,
                "compatibility": self.compatibility}  # fmt: skip


def subject_of(topic: str) -> str:
    """Confluent's TopicNameStrategy for message values: ``<topic>-value``."""
    return f"{topic}-value"


def register_contract_schemas(
    registry: SchemaRegistry, schemas: dict[str, str], compatibility: str = "BACKWARD"
) -> list[Registered]:
    """Register each topic's schema (topic -> Avro text) under ``<topic>-value``, set
    ``compatibility`` as the registry's default and on each subject. Registering the same
    schema again returns its id (idempotent); an incompatible change is refused by the
    registry (a SchemaRegistryError naming the subject)."""
    registry.set_compatibility(compatibility)
    done = []
    for topic, schema_str in sorted(schemas.items()):
        subject = subject_of(topic)
        schema_id = registry.register(subject, schema_str)
        level = registry.set_compatibility(compatibility, subject)
        done.append(Registered(subject, schema_id, len(registry.versions(subject)), level))
    return done
