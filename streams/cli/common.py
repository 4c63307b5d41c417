"""Helpers shared by the `ccpulse` command modules: consoles, output, Kafka targets."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from streams.settings import Settings
from streams.simulator.config import TwinShrinkage
from streams.wire.kafka_config import KafkaSecurity, check_connection, client_config

KAFKA_SECURITY_EPILOG = (
    "Kafka TLS and SASL/SCRAM come from CCPULSE_KAFKA_SECURITY_PROTOCOL, CCPULSE_KAFKA_SASL_* and "
    "CCPULSE_KAFKA_SSL_* (the password also from CCPULSE_KAFKA_SASL_PASSWORD_FILE); see docs/operations.md."
)

console = Console(stderr=False)
err_console = Console(stderr=True)


def _emit(args: argparse.Namespace, rows: list[dict[str, Any]], title: str) -> None:
    if args.json:
        print(json.dumps(rows, default=str))
        return
    table = Table(title=title)
    for column in rows[0] if rows else ["(nothing)"]:
        table.add_column(str(column))
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)


def _default_bootstrap(settings: Settings) -> str:
    """CCPULSE_BOOTSTRAP_SERVERS when set, else a broker started by `services up`, else the default."""
    if "bootstrap_servers" in settings.model_fields_set:
        return settings.bootstrap_servers
    from streams.services import running_broker

    return running_broker(settings.state_dir / "services") or settings.bootstrap_servers


def _kafka_target(args: argparse.Namespace, settings: Settings) -> tuple[str, KafkaSecurity]:
    """Bootstrap servers and client security. A secured connection is tried first, so that a
    wrong password or CA ends the command with one clear line instead of endless retries."""
    bootstrap = getattr(args, "bootstrap_servers", None) or _default_bootstrap(settings)
    security = settings.kafka_security()
    _check_secured(bootstrap, security)
    return bootstrap, security


def _check_secured(bootstrap: str, security: KafkaSecurity) -> None:
    if security.protocol != "PLAINTEXT":
        check_connection(client_config(bootstrap, security))


def _client_config(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    return client_config(*_kafka_target(args, settings))


def _fmt(value: float | None, digits: int = 3) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


def _pseudonym_key(settings: Settings) -> bytes | None:
    """CCPULSE_PSEUDONYM_KEY[_FILE] as bytes for library code (dead letters); unset: None."""
    return settings.pseudonym_key.get_secret_value().encode() if settings.pseudonym_key else None


def add_people_arguments(parser: argparse.ArgumentParser, shrinkage: float, default_note: str) -> None:
    """``--shrinkage`` and ``--absence``: a plan's agents as people are in the twin
    (streams/simulator/planned.py, TwinShrinkage); read them back with ``people_of``."""
    shrinkage_help = (
        "share of scheduled agent-time off the floor outside breaks, played out on the plan's "
        f"agents: absent for a shift, or NOT_READY OFFLINE for an interval ({default_note})"
    )
    absence_help = "of the shrinkage, the share of agents absent for a whole shift (default %(default)s)"
    options = (("--shrinkage", shrinkage, shrinkage_help), ("--absence", 0.05, absence_help))
    for flag, default, text in options:
        parser.add_argument(flag, type=float, default=default, help=text)


def people_of(args: argparse.Namespace) -> TwinShrinkage | None:
    """The TwinShrinkage of ``--shrinkage`` / ``--absence`` (None at 0); raises ValueError."""
    total = float(args.shrinkage)
    return TwinShrinkage.of_total(total, min(float(args.absence), total)) if total > 0 else None
