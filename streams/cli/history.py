"""`ccpulse history ...` and `ccpulse report`: the ClickHouse history commands."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streams.cli.common import KAFKA_SECURITY_EPILOG, _client_config, _emit, _fmt, _pseudonym_key, err_console
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.history.store import HistoryStore


def open_history_store(settings: Settings) -> HistoryStore:
    """The configured HistoryStore: chdb under the state dir, or a ClickHouse server."""
    if settings.history_backend == "chdb":
        from streams.history.chdb_store import ChdbStore

        return ChdbStore(settings.chdb_path(), database=settings.clickhouse_database)
    from streams.history.clickhouse_store import ClickHouseDriverStore

    password = settings.clickhouse_password.get_secret_value() if settings.clickhouse_password else ""
    return ClickHouseDriverStore(
        settings.clickhouse_host,
        settings.clickhouse_port,
        database=settings.clickhouse_database,
        user=settings.clickhouse_user,
        password=password,
    )


def cmd_history_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from streams.history.migrate import migrate

    store = open_history_store(settings)
    try:
        results = migrate(store)
        where = f"{store.backend} {store.server_version()}, database {store.database}"
    finally:
        store.close()
    _emit(args, [r.as_row() for r in results], f"history migrations on {where}")
    return 0


def cmd_history_query(args: argparse.Namespace, settings: Settings) -> int:
    store = open_history_store(settings)
    try:
        rows = store.query(args.sql)
    finally:
        store.close()
    _emit(args, [{f"c{i}": v for i, v in enumerate(row)} for row in rows], "query")
    return 0


def cmd_history_retention(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime

    from streams.history.retention import DEFAULT_RETENTION_DAYS, drop_old_partitions

    retention = dict(DEFAULT_RETENTION_DAYS)
    for item in args.days or []:
        table, _, days = item.partition("=")
        if table not in retention or not days.isdigit():
            err_console.print(
                f"[red]--days {item!r}[/red]: expected TABLE=DAYS with TABLE in {sorted(retention)}"
            )
            return 2
        retention[table] = int(days)
    import signal
    import threading

    stop = threading.Event()
    if args.every is not None:  # the timer: run until SIGTERM / Ctrl-C
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda _s, _f: stop.set())
    while True:
        store = open_history_store(settings)
        try:
            dropped = drop_old_partitions(store, datetime.now(UTC).date(), retention, dry_run=args.dry_run)
        finally:
            store.close()
        title = "partitions that would be dropped" if args.dry_run else "dropped partitions"
        _emit(
            args,
            [d.as_row() for d in dropped],
            f"{title} at {datetime.now(UTC).isoformat(timespec='seconds')}",
        )
        if args.every is None or stop.wait(args.every):
            return 0


def cmd_history_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from rich.progress import BarColumn, Progress, TextColumn

    from streams.history.migrate import migrate
    from streams.history.parallel_backfill import backfill_file

    path = Path(args.file)
    if not path.is_file():
        err_console.print(
            f"[red]--file {path}[/red]: no such file (write one with `ccpulse simulate --path`)"
        )
        return 2
    store = open_history_store(settings)
    try:
        migrate(store)
        columns = (TextColumn("backfill"), BarColumn(), TextColumn("{task.fields[messages]:,} messages"))
        with Progress(*columns, console=err_console, transient=True) as progress:
            task = progress.add_task("backfill", total=None, messages=0)
            stats = backfill_file(
                store,
                path,
                workers=args.workers,
                registry_url=settings.schema_registry_url,
                on_progress=lambda n: progress.update(task, messages=n),
            )
    finally:
        store.close()
    row = {
        "messages": stats.messages,
        "workers": args.workers,
        "dead_letters": stats.dead_letters,
        "load_s": round(stats.load_seconds, 1),
        "messages_per_s": round(stats.rows_per_s),
        "kpi_s": round(stats.kpi_seconds, 1),
        "kpi_buckets": stats.kpi_buckets,
        **{f"rows_{t}": n for t, n in sorted(stats.rows.items())},
    }
    _emit(args, [row], f"backfill into {settings.history_backend}")
    return 0


def cmd_history_sink(args: argparse.Namespace, settings: Settings) -> int:
    import signal
    import threading
    from dataclasses import asdict

    from prometheus_client import CollectorRegistry, start_http_server

    from streams.domain.regions import region_codes
    from streams.history.migrate import migrate
    from streams.history.sink import HistorySink
    from streams.wire.codec import Codec

    codec = Codec.for_registry_url(settings.schema_registry_url, known_regions=region_codes())
    store = open_history_store(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _s, _f: stop.set())
    try:
        migrate(store)
        config = {**_client_config(args, settings), "group.id": args.group}
        registry = CollectorRegistry()
        server = None
        if args.metrics_port >= 0:
            server, _thread = start_http_server(
                args.metrics_port, addr=settings.metrics_host, registry=registry
            )
            url = f"http://{settings.metrics_host}:{server.server_address[1]}/metrics"
            print(json.dumps({"event": "metrics", "url": url}), flush=True)
        try:
            key = _pseudonym_key(settings)
            sink = HistorySink(config, store, codec, registry=registry, pseudonym_key=key)
            stats = sink.run(stop, idle_exit_s=args.idle_exit)
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()
    finally:
        store.close()
    row = asdict(stats)
    row["resumed_from"] = {f"{t}[{p}]": o for (t, p), o in stats.resumed_from.items()}
    if args.json:
        print(json.dumps(row))
    else:
        _emit(args, [{k: v for k, v in row.items() if k != "resumed_from"}], f"history sink ({args.group})")
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import date

    from streams.history.report import render

    try:
        day = date.fromisoformat(args.date)
    except ValueError:
        err_console.print(f"[red]--date {args.date!r}[/red]: expected YYYY-MM-DD")
        return 2
    out = Path(args.out)
    store = open_history_store(settings)
    try:
        days = render(store, day, out, min_contacts=args.min_region_contacts)
    finally:
        store.close()
    with_traffic = [d for d in days if d.total["offered"]]
    rows = [
        {"region": d.region, "offered": d.total["offered"], "service_level": _fmt(d.result.service_level)}
        for d in with_traffic[:5]
    ]
    title = (f"{out} written: {len(with_traffic)} regions with traffic; the worst five "
             f"with >= {args.min_region_contacts} contacts")  # fmt: skip
    _emit(args, rows, title)
    return 0


def add_history_parsers(sub: Any) -> None:
    """The `history` command group and `report`, on the top-level subparsers."""
    history = sub.add_parser(
        "history", help="ClickHouse history (CCPULSE_HISTORY_BACKEND: chdb or clickhouse)"
    )
    history_sub = history.add_subparsers(dest="action", required=True)
    history_sub.add_parser("migrate", help="apply the versioned migrations (idempotent)").set_defaults(
        func=cmd_history_migrate
    )
    query = history_sub.add_parser("query", help="run an ad-hoc SELECT")
    query.add_argument("sql")
    query.set_defaults(func=cmd_history_query)

    retention = history_sub.add_parser(
        "retention", help="drop day partitions older than each table's retention"
    )
    retention.add_argument("--days", action="append", metavar="TABLE=DAYS", help="override, repeatable")
    retention.add_argument("--dry-run", action="store_true", help="list what would be dropped")
    retention.add_argument("--every", type=float, default=None, metavar="SECONDS", help="repeat (a timer)")
    retention.set_defaults(func=cmd_history_retention)

    sink = history_sub.add_parser(
        "sink", help="Kafka -> ClickHouse, offset-bounded idempotent batches", epilog=KAFKA_SECURITY_EPILOG
    )
    sink.add_argument(
        "--bootstrap-servers", default=None, help="broker list (default: CCPULSE_BOOTSTRAP_SERVERS)"
    )
    sink.add_argument("--group", default="ccpulse-history", help="consumer group")
    sink.add_argument("--idle-exit", type=float, default=None, help="exit when idle this long, all read")
    sink.add_argument(
        "--metrics-port", type=int, default=-1, help="serve /metrics on this port (0: free; -1: off)"
    )
    sink.set_defaults(func=cmd_history_sink)

    backfill = history_sub.add_parser("backfill", help="load a simulator file and compute KPI buckets in SQL")
    backfill.add_argument("--file", required=True, help="a file written by `ccpulse simulate --path`")
    backfill.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes that decode (default: one per core; the result does not depend on it)",
    )
    backfill.set_defaults(func=cmd_history_backfill)

    report = sub.add_parser("report", help="daily per-region HTML report with PNG charts, from history")
    report.add_argument("--date", required=True, help="YYYY-MM-DD (each region's local day)")
    report.add_argument("--out", default="report.html", help="HTML file; PNGs go to <name>_files/")
    report.add_argument(
        "--min-region-contacts", type=int, default=20,
        help="rank a region among the worst only with at least this many contacts that day (default 20)",
    )  # fmt: skip
    report.set_defaults(func=cmd_report)
