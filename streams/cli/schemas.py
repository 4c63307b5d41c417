"""`ccpulse schemas ...`: the topic schemas in a Schema Registry (Confluent API).

`register` puts every contract schema (schemas/topics/*.yaml -> .avsc) under Confluent's
subject naming ``<topic>-value`` and sets the compatibility level (default BACKWARD) as
the registry's default and on each subject. Idempotent: an unchanged schema keeps its id.
"""

from __future__ import annotations

import argparse
from typing import Any

from streams.cli.common import _emit, err_console
from streams.settings import Settings

COMPATIBILITY_LEVELS = ("BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL",
                        "FULL_TRANSITIVE", "NONE")  # fmt: skip


def cmd_schemas_register(args: argparse.Namespace, settings: Settings) -> int:
    from streams.wire.schema_registry import ConfluentSchemaRegistry, register_contract_schemas
    from streams.wire.topic_contracts import SCHEMAS_DIR, load_topic_contracts

    url = (args.registry or settings.schema_registry_url or "").strip()
    if not url:
        from streams.services import running_registry

        url = running_registry(settings.state_dir / "services") or ""
    if not url:
        err_console.print(
            "[red]no registry[/red]: pass --registry URL, set CCPULSE_SCHEMA_REGISTRY_URL "
            "or start one with `ccpulse services up apicurio`"
        )
        return 2
    contracts = load_topic_contracts(SCHEMAS_DIR)
    schemas = {topic: contract.schema_path(SCHEMAS_DIR).read_text() for topic, contract in contracts.items()}
    registry = ConfluentSchemaRegistry(url)
    try:
        done = register_contract_schemas(registry, schemas, args.compatibility)
    finally:
        registry.close()
    _emit(args, [r.as_row() for r in done], f"schemas in {url}")
    return 0


def add_schemas_parsers(sub: Any) -> None:
    schemas = sub.add_parser("schemas", help="the topic schemas in a Schema Registry (Confluent API)")
    schemas_sub = schemas.add_subparsers(dest="action", required=True)
    register = schemas_sub.add_parser(
        "register", help="register every contract schema under <topic>-value and set compatibility"
    )
    register.add_argument(
        "--registry",
        default=None,
        help="Confluent API URL (default: CCPULSE_SCHEMA_REGISTRY_URL, else a `services up` apicurio)",
    )
    register.add_argument("--compatibility", default="BACKWARD", choices=COMPATIBILITY_LEVELS)
    register.set_defaults(func=cmd_schemas_register)
