"""Avro schemas as the codec reads and writes them, one per topic and schema id.

Time logical types are dropped (times stay int epoch milliseconds; the bytes are the same),
and each topic's schema knows its int, long and bytes fields for the codec's range and type
checks, and every earlier version still decodable (``writers``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastavro import parse_schema

from streams.wire.avro_records import INPUT_BINDINGS, InputBinding

MAGIC_BYTE = 0  # Confluent wire format: magic byte, 4-byte big-endian schema id, Avro body

_TIME_LOGICAL_TYPES = frozenset(
    {
        "timestamp-millis",
        "timestamp-micros",
        "local-timestamp-millis",
        "local-timestamp-micros",
        "date",
        "time-millis",
        "time-micros",
    }
)


def wire_schema(schema: Any) -> Any:
    """The schema as the codec reads and writes it: time logical types dropped, so
    times stay int milliseconds (same bytes). Accepts JSON text, a JSON dict or a
    fastavro-parsed dict (its private ``__`` keys are dropped)."""
    return _strip_time_types(json.loads(schema) if isinstance(schema, str) else schema)


def _strip_time_types(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: _strip_time_types(v)
            for k, v in node.items()
            if not k.startswith("__") and not (k == "logicalType" and v in _TIME_LOGICAL_TYPES)
        }
    if isinstance(node, list):
        return [_strip_time_types(item) for item in node]
    return node


def _branches(avro_type: Any) -> list[Any]:
    return avro_type if isinstance(avro_type, list) else [avro_type]


def _type_name(branch: Any) -> Any:
    return branch.get("type") if isinstance(branch, dict) else branch


def _fields_of_type(schema: dict[str, Any], names: set[str]) -> tuple[str, ...]:
    return tuple(
        f["name"] for f in schema["fields"] if any(_type_name(b) in names for b in _branches(f["type"]))
    )


@dataclass(frozen=True)
class TopicSchema:
    topic: str
    schema_id: int
    header: bytes
    reader: Any  # fastavro-parsed wire schema of the current version
    int_fields: tuple[str, ...]
    long_fields: tuple[str, ...]
    bytes_fields: tuple[str, ...]
    binding: InputBinding | None
    writers: dict[int, Any]  # schema id -> parsed wire schema of every decodable version


def topic_schema(topic: str, schema_id: int, schema: Any) -> TopicSchema:
    if not 0 <= schema_id < 2**31:
        msg = f"schema id {schema_id} for {topic} is outside [0, 2**31)"
        raise ValueError(msg)
    wire = wire_schema(schema)
    reader = parse_schema(wire)
    return TopicSchema(
        topic=topic,
        schema_id=schema_id,
        header=bytes([MAGIC_BYTE]) + schema_id.to_bytes(4, "big"),
        reader=reader,
        int_fields=_fields_of_type(wire, {"int"}),
        long_fields=_fields_of_type(wire, {"long"}),
        bytes_fields=_fields_of_type(wire, {"bytes"}),
        binding=INPUT_BINDINGS.get(topic),
        writers={schema_id: reader},
    )
