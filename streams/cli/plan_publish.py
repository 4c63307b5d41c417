"""`ccpulse plan publish PLAN.json`: a plan file's intervals to cc.staffing.plan and ClickHouse.

``add_publish_parser(plan_subparsers)`` adds the command to the `ccpulse plan` group (wired
in streams/cli/main.py). The plan file is the one `ccpulse plan schedule` writes
(streams/planning/plan_file.py). The publication time is the wall clock when the command
runs, unless ``--published-at`` gives one (a replay then writes identical records).
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from streams.cli.common import KAFKA_SECURITY_EPILOG, _client_config, _emit, err_console
from streams.cli.history import open_history_store
from streams.settings import Settings


def _published_at_ms(text: str | None) -> int:
    if text is None:
        return int(time.time() * 1000)
    if text.isdigit():
        return int(text)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        msg = f"--published-at {text!r} has no time zone; give one (e.g. 2026-05-11T06:00:00+00:00)"
        raise ValueError(msg)
    return int(moment.timestamp() * 1000)


def cmd_plan_publish(args: argparse.Namespace, settings: Settings) -> int:
    from streams.planning.plan_file import read_plan
    from streams.planning.publish import publish_plan, store_plan
    from streams.wire.codec import Codec
    from streams.wire.topics import PLAN_TOPIC

    try:
        plan = read_plan(Path(args.plan))
        published_at_ms = _published_at_ms(args.published_at)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        err_console.print(f"[red]error:[/red] {args.plan}: {exc}")
        return 2
    rows: list[dict[str, Any]] = []
    if not args.no_kafka:
        codec = Codec.for_registry_url(settings.schema_registry_url)
        sent = publish_plan(_client_config(args, settings), codec, plan.intervals, published_at_ms)
        rows.append({"to": PLAN_TOPIC, "intervals": sent, "plan_id": plan.plan_id})
    if not args.no_history:
        store = open_history_store(settings)
        try:
            stored = store_plan(store, plan.intervals, published_at_ms)
        finally:
            store.close()
        rows.append({"to": f"{store.backend} staffing_plan", "intervals": stored, "plan_id": plan.plan_id})
    _emit(args, rows, f"plan {plan.plan_id} published at {published_at_ms} ms")
    return 0


def add_publish_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `publish` to the `ccpulse plan` subcommands."""
    publish = subparsers.add_parser(
        "publish",
        help="publish a plan file to cc.staffing.plan and ClickHouse staffing_plan",
        epilog=KAFKA_SECURITY_EPILOG,
    )
    publish.add_argument("plan", metavar="PLAN.json", help="a plan file (`ccpulse plan schedule` writes it)")
    publish.add_argument(
        "--bootstrap-servers",
        default=None,
        help="broker list (default: env CCPULSE_BOOTSTRAP_SERVERS, else a `services up` broker)",
    )
    publish.add_argument(
        "--published-at", default=None, help="epoch ms or ISO 8601 with a zone (default: now)"
    )
    publish.add_argument("--no-kafka", action="store_true", help="only ClickHouse")
    publish.add_argument("--no-history", action="store_true", help="only cc.staffing.plan")
    publish.set_defaults(func=cmd_plan_publish)
    return publish
