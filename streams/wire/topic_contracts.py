"""Topic contracts: schemas/topics/*.yaml, the .avsc files and the example messages.

A contract file names the topic, its key, its value schema (file and pinned schema
id; optionally ``previous_schemas``, the pinned id and file of each earlier version
that must stay decodable), partitions, replication factor (production value; capped
at the broker count when applied locally), cleanup policy, retention, extra topic
configs, producers and consumers. Examples live in schemas/examples/<topic>/*.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"


@dataclass(frozen=True)
class TopicContract:
    name: str
    description: str
    key: str
    value_schema: str  # file name under schemas/
    schema_id: int  # pinned id used when no Schema Registry is configured
    partitions: int
    replication_factor: int
    cleanup_policy: str  # "delete" | "compact" | "compact,delete"
    retention_ms: int  # -1 = forever
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    config: dict[str, str] = field(default_factory=dict)
    # pinned id -> file under schemas/ of each earlier value schema version still decodable
    previous_schemas: dict[int, str] = field(default_factory=dict)

    def topic_config(self) -> dict[str, str]:
        """Kafka topic configs to apply (strings, as the admin API wants them)."""
        configs = {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}
        configs.update({k: str(v) for k, v in self.config.items()})
        return configs

    def schema_path(self, schemas_dir: Path = SCHEMAS_DIR) -> Path:
        return schemas_dir / self.value_schema


def _contract_from_mapping(raw: dict[str, Any], source: Path) -> TopicContract:
    required = (
        "topic description key value_schema schema_id partitions replication_factor "
        "cleanup_policy retention_ms producers consumers"
    ).split()
    missing = [k for k in required if k not in raw]
    if missing:
        msg = f"{source}: topic contract misses {', '.join(missing)}"
        raise ValueError(msg)
    return TopicContract(
        name=str(raw["topic"]),
        description=str(raw["description"]).strip(),
        key=str(raw["key"]),
        value_schema=str(raw["value_schema"]),
        schema_id=int(raw["schema_id"]),
        partitions=int(raw["partitions"]),
        replication_factor=int(raw["replication_factor"]),
        cleanup_policy=str(raw["cleanup_policy"]),
        retention_ms=int(raw["retention_ms"]),
        producers=tuple(raw["producers"]),
        consumers=tuple(raw["consumers"]),
        config={str(k): str(v) for k, v in (raw.get("config") or {}).items()},
        previous_schemas={int(k): str(v) for k, v in (raw.get("previous_schemas") or {}).items()},
    )


@cache
def load_topic_contracts(schemas_dir: Path = SCHEMAS_DIR) -> dict[str, TopicContract]:
    contracts: dict[str, TopicContract] = {}
    for path in sorted((schemas_dir / "topics").glob("*.yaml")):
        contract = _contract_from_mapping(yaml.safe_load(path.read_text()), path)
        contracts[contract.name] = contract
    if not contracts:
        msg = f"no topic contracts found under {schemas_dir / 'topics'}"
        raise FileNotFoundError(msg)
    return contracts


def load_examples(topic: str, schemas_dir: Path = SCHEMAS_DIR) -> list[tuple[str, dict[str, Any]]]:
    """(file name, JSON value) for every example of a topic, sorted by name."""
    folder = schemas_dir / "examples" / topic
    return [(p.name, json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]
