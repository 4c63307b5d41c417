"""Schema Registry helpers for tests: a call-counting wrapper over any SchemaRegistry, and
emptying a real (Apicurio) registry between tests so that each starts with no subjects."""

from __future__ import annotations

import httpx

from streams.wire.schema_registry import SchemaRegistry


class CountingRegistry:
    """A SchemaRegistry that counts ``schema`` look-ups (``lookups``), like the in-memory one."""

    def __init__(self, inner: SchemaRegistry) -> None:
        self.inner = inner
        self.lookups = 0

    def register(self, subject: str, schema_str: str) -> int:
        return self.inner.register(subject, schema_str)

    def versions(self, subject: str) -> list[tuple[int, str]]:
        return self.inner.versions(subject)

    def schema(self, schema_id: int) -> str | None:
        self.lookups += 1
        return self.inner.schema(schema_id)

    def set_compatibility(self, level: str, subject: str | None = None) -> str:
        return self.inner.set_compatibility(level, subject)


def empty_registry(url: str) -> None:
    """Delete every subject (soft, then permanently) through the Confluent API; schema ids
    already handed out stay resolvable by id where the registry keeps the content."""
    with httpx.Client(base_url=url, timeout=30) as client:
        subjects = client.get("/subjects").raise_for_status().json()
        for subject in subjects:
            client.delete(f"/subjects/{subject}").raise_for_status()
            client.delete(f"/subjects/{subject}", params={"permanent": "true"}).raise_for_status()
        left = client.get("/subjects").raise_for_status().json()
    assert left == [], f"subjects left after deleting: {left}"
