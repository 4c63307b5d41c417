"""`ccpulse services ...` (local development services) and `ccpulse topics apply`."""

from __future__ import annotations

import argparse
from pathlib import Path

from streams.cli.common import (
    _emit,
    _kafka_target,
    err_console,
)
from streams.cli.history import add_history_parsers, open_history_store  # noqa: F401 - re-exported
from streams.settings import Settings

SERVICE_NAMES = ("kafka", "kafka-cluster", "clickhouse", "prometheus", "tansu", "apicurio")
DEFAULT_UP = ("kafka", "clickhouse", "prometheus")


def cmd_services_up(args: argparse.Namespace, settings: Settings) -> int:
    from streams.services import start_services

    names = args.names or list(DEFAULT_UP)
    unknown = sorted(set(names) - set(SERVICE_NAMES))
    if unknown:
        expected = ", ".join(SERVICE_NAMES)
        err_console.print(f"[red]unknown service(s) {', '.join(unknown)}[/red]; expected {expected}")
        return 2
    infos = start_services(names, state_dir=settings.state_dir / "services")
    _emit(args, [info.as_row() for info in infos.values()], "services up")
    return 0


def cmd_services_down(args: argparse.Namespace, settings: Settings) -> int:
    from streams.services import stop_services

    stopped = stop_services(settings.state_dir / "services")
    _emit(args, [{"service": name, "state": "stopped"} for name in stopped], "services down")
    return 0


def cmd_services_status(args: argparse.Namespace, settings: Settings) -> int:
    from streams.services import services_status

    statuses = services_status(settings.state_dir / "services")
    _emit(args, [status.as_row() for status in statuses], "services")
    return 0


def cmd_services_prepare(args: argparse.Namespace, settings: Settings) -> int:
    from streams.services.kafka import ensure_kafka_jars

    libs = ensure_kafka_jars(args.kafka_version, Path(args.cache_dir))
    rows: list[dict[str, object]] = [
        {"service": f"kafka {args.kafka_version}", "files": len(list(libs.glob("*.jar"))), "dir": libs}
    ]
    if args.registry:
        from streams.services.apicurio import APICURIO_VERSION, ensure_apicurio_app

        runner = ensure_apicurio_app(APICURIO_VERSION, Path(args.cache_dir))
        rows.append({"service": f"apicurio {APICURIO_VERSION}", "files": 1, "dir": runner.parent})
    _emit(args, rows, "prepare")
    return 0


def cmd_topics_apply(args: argparse.Namespace, settings: Settings) -> int:
    from streams.wire.topic_admin import apply_topics

    bootstrap, security = _kafka_target(args, settings)
    changes = apply_topics(bootstrap, security=security)
    _emit(args, [change.as_row() for change in changes], f"topics on {bootstrap}")
    return 0
