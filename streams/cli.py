"""`ccpulse` command line: the composition root.

Reads the settings once, wires adapters and calls library code with plain values.
Human output is rich tables; `--json` gives machine output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from streams.kafka_config import KafkaSecurity, KafkaSecurityError, check_connection, client_config
from streams.services.kafka import DEFAULT_CACHE, KAFKA_VERSION
from streams.settings import Settings, load_settings

if TYPE_CHECKING:
    from streams.history.store import HistoryStore

KAFKA_SECURITY_EPILOG = (
    "Kafka TLS and SASL/SCRAM come from CCPULSE_KAFKA_SECURITY_PROTOCOL, CCPULSE_KAFKA_SASL_* and "
    "CCPULSE_KAFKA_SSL_* (the password also from CCPULSE_KAFKA_SASL_PASSWORD_FILE); see docs/operations.md."
)
SERVICE_NAMES = ("kafka", "kafka-cluster", "clickhouse", "prometheus", "tansu")
DEFAULT_UP = ("kafka", "clickhouse", "prometheus")

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
    _emit(
        args, [{"kafka": args.kafka_version, "jars": len(list(libs.glob("*.jar"))), "dir": libs}], "prepare"
    )
    return 0


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


def cmd_topics_apply(args: argparse.Namespace, settings: Settings) -> int:
    from streams.services.topics import apply_topics

    bootstrap, security = _kafka_target(args, settings)
    changes = apply_topics(bootstrap, security=security)
    _emit(args, [change.as_row() for change in changes], f"topics on {bootstrap}")
    return 0


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

    from streams.history.backfill_file import backfill_file
    from streams.history.migrate import migrate

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

    from streams.codec import Codec
    from streams.domain.regions import region_codes
    from streams.history.migrate import migrate
    from streams.history.sink import HistorySink

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
            stats = HistorySink(config, store, codec, registry=registry).run(stop, idle_exit_s=args.idle_exit)
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
        days = render(store, day, out)
    finally:
        store.close()
    with_traffic = [d for d in days if d.total["offered"]]
    rows = [
        {"region": d.region, "offered": d.total["offered"], "service_level": _fmt(d.result.service_level)}
        for d in with_traffic[:5]
    ]
    _emit(args, rows, f"{out} written: {len(with_traffic)} regions with traffic; the worst five")
    return 0


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from streams.simulator.__main__ import main as simulate_main
    from streams.simulator.__main__ import parse_args

    argv = list(args.args)
    if "--bootstrap-servers" not in argv:
        argv += ["--bootstrap-servers", _default_bootstrap(settings)]
    security = settings.kafka_security()
    options = parse_args(argv)
    if options.to == "kafka":
        _check_secured(options.bootstrap_servers, security)
    key = settings.pseudonym_key.get_secret_value().encode() if settings.pseudonym_key else None
    simulate_main(argv, security=security, pseudonym_key=key)
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import logging

    from streams.app.kpi import KpiConfig
    from streams.app.runner import run_worker
    from streams.app.worker import WorkerOptions
    from streams.codec import Codec
    from streams.domain.kpi import ServiceLevelVariant
    from streams.domain.regions import region_codes

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    options = WorkerOptions(
        group_id=args.group,
        app_id=args.group,
        checkpoint_interval_s=args.checkpoint_interval,
        idempotent_producer=not args.no_idempotence,
        kpi=KpiConfig(allowed_lateness_ms=int(args.allowed_lateness * 1000)),
    )
    codec = Codec.for_registry_url(settings.schema_registry_url, known_regions=region_codes())
    port = None if args.metrics_port < 0 else (args.metrics_port or settings.metrics_port)
    variant = ServiceLevelVariant(args.service_level_variant)
    summary = run_worker(
        _client_config(args, settings), codec, options, settings.metrics_host, port, args.idle_exit, variant
    )
    print(json.dumps(summary, default=str), flush=True)
    return 0


def cmd_kpi_show(args: argparse.Namespace, settings: Settings) -> int:
    from streams.app.snapshots import latest_snapshots
    from streams.codec import Codec

    snapshots = latest_snapshots(_client_config(args, settings), Codec.pinned())
    rows = []
    for _key, s in sorted(snapshots.items()):
        if s["window"] != args.window or (args.region and s["region"] not in args.region):
            continue
        rows.append(
            {
                "region": s["region"], "channel": s["channel"], "offered": s["offered"],
                "answered": s["answered"], "abandoned": s["abandoned"],
                "service_level": _fmt(s["service_level"]), "asa_s": _fmt(s["asa_seconds"], 1),
                "aht_s": _fmt(s["aht_seconds"], 1), "abandonment": _fmt(s["abandonment_rate"]),
                "fcr": _fmt(s["first_line_resolution"]), "csat_top_box": _fmt(s["csat_top_box"]),
                "version": s["version"],
            }
        )  # fmt: skip
    _emit(args, rows, f"KPIs, window {args.window} (cc.kpi.snapshots)")
    return 0 if rows else 1


def cmd_whatif(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import datetime

    from streams.simulator.whatif import Tally, compare

    factors = {}
    for spec in args.staffing or []:
        region, _, factor = spec.partition("=")
        try:
            factors[region.strip()] = float(factor)
        except ValueError:
            err_console.print(f"[red]--staffing {spec!r}[/red]: expected REGION=FACTOR, e.g. RU-MOW=0.75")
            return 2
    regions = [r.strip() for r in args.regions.split(",") if r.strip()] or None
    start = datetime.fromisoformat(args.start) if args.start else None
    baseline, policy = compare(regions, args.hours, args.seed, start, factors)
    rows = []
    for region in sorted(baseline.by_home):
        b, p = baseline.by_home[region], policy.by_home[region]
        bs, ps = baseline.by_server[region], policy.by_server.get(region, Tally())
        rows.append(
            {
                "region": region, "sl_cust_base": _fmt(b.service_level), "sl_cust_pol": _fmt(p.service_level),
                "sl_queue_base": _fmt(bs.service_level), "sl_queue_pol": _fmt(ps.service_level),
                "asa_base_s": _fmt(b.asa_s, 1), "asa_pol_s": _fmt(p.asa_s, 1),
                "aband_base": _fmt(b.abandonment), "aband_pol": _fmt(p.abandonment),
            }
        )  # fmt: skip
    bt, pt = baseline.total(), policy.total()
    rows.append(
        {
            "region": "ALL", "sl_cust_base": _fmt(bt.service_level), "sl_cust_pol": _fmt(pt.service_level),
            "sl_queue_base": _fmt(bt.service_level), "sl_queue_pol": _fmt(pt.service_level),
            "asa_base_s": _fmt(bt.asa_s, 1), "asa_pol_s": _fmt(pt.asa_s, 1),
            "aband_base": _fmt(bt.abandonment), "aband_pol": _fmt(pt.abandonment),
        }
    )  # fmt: skip
    _emit(
        args, rows, f"what-if: home region only vs EWT overflow ({policy.overflowed:,} contacts overflowed)"
    )
    if not args.json:
        console.print("policy decisions: " + ", ".join(f"{k} {v:,}" for k, v in policy.reasons.most_common()))
    return 0


def _fmt(value: float | None, digits: int = 3) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    if args.contract:
        from streams.demo import run_contract_demo

        return run_contract_demo(console=console, json_output=args.json, state_dir=settings.state_dir)
    from streams.live import DemoOptions, run_demo

    options = DemoOptions(
        duration_s=args.duration,
        speed=args.speed,
        regions=tuple(r.strip() for r in args.regions.split(",") if r.strip()) or None,
        live=not args.no_live,
        metrics_port=args.metrics_port if args.metrics_port is not None else settings.metrics_port,
    )
    return run_demo(console, options, settings.state_dir, args.json)


def _duration(text: str) -> float:
    """Seconds from '90', '90s', '5m' or '1h'."""
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        msg = f"duration {text!r}: expected seconds or a number with s, m or h (e.g. 60s, 5m)"
        raise argparse.ArgumentTypeError(msg) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ccpulse",
        description="Real-time contact-centre analytics and routing. "
        "Every setting is a CCPULSE_* environment variable (see README); "
        "secrets may also come from CCPULSE_<NAME>_FILE. Kafka TLS and SASL: "
        "CCPULSE_KAFKA_SECURITY_PROTOCOL, CCPULSE_KAFKA_SASL_*, CCPULSE_KAFKA_SSL_* "
        "(docs/operations.md).",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable JSON output")
    sub = parser.add_subparsers(dest="command", required=True)

    services = sub.add_parser("services", help="start/stop real local services (no Docker)")
    services_sub = services.add_subparsers(dest="action", required=True)
    up = services_sub.add_parser("up", help=f"start services (default: {', '.join(DEFAULT_UP)})")
    up.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(SERVICE_NAMES)}")
    up.set_defaults(func=cmd_services_up)
    services_sub.add_parser("down", help="stop every service started by `up`").set_defaults(
        func=cmd_services_down
    )
    services_sub.add_parser("status", help="show running services").set_defaults(func=cmd_services_status)
    prepare = services_sub.add_parser("prepare", help="resolve the Apache Kafka jars with Maven (once)")
    prepare.add_argument("--kafka-version", default=KAFKA_VERSION)
    prepare.add_argument("--cache-dir", default=str(DEFAULT_CACHE))
    prepare.set_defaults(func=cmd_services_prepare)

    topics = sub.add_parser("topics", help="Kafka topics from schemas/topics/*.yaml")
    topics_sub = topics.add_subparsers(dest="action", required=True)
    apply = topics_sub.add_parser(
        "apply", help="create/update every contract topic (idempotent)", epilog=KAFKA_SECURITY_EPILOG
    )
    apply.add_argument(
        "--bootstrap-servers",
        default=None,
        help="broker list (default: env CCPULSE_BOOTSTRAP_SERVERS, else 127.0.0.1:9092)",
    )
    apply.set_defaults(func=cmd_topics_apply)

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

    simulate = sub.add_parser(
        "simulate",
        help="the digital twin: simulated traffic to a file or Kafka (`ccpulse simulate -- --help`)",
        add_help=False,
        description="Options after the command are the simulator's; see docs/simulator.md.",
    )
    simulate.set_defaults(func=cmd_simulate, args=[])

    sink = history_sub.add_parser(
        "sink", help="Kafka -> ClickHouse, offset-bounded idempotent batches", epilog=KAFKA_SECURITY_EPILOG
    )
    sink.add_argument(
        "--bootstrap-servers", default=None, help="broker list (default: CCPULSE_BOOTSTRAP_SERVERS)"
    )
    sink.add_argument("--group", default="ccpulse-history", help="consumer group")
    sink.add_argument("--idle-exit", type=float, default=None, help="exit after this many idle seconds")
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

    bootstrap_help = "broker list (default: env CCPULSE_BOOTSTRAP_SERVERS, else a `services up` broker)"
    worker = sub.add_parser(
        "worker", help="run a KPI worker (one process of the consumer group)", epilog=KAFKA_SECURITY_EPILOG
    )
    worker.add_argument("--bootstrap-servers", default=None, help=bootstrap_help)
    worker.add_argument("--group", default="ccpulse-kpi", help="consumer group = application id")
    worker.add_argument(
        "--metrics-port", type=int, default=0, help="0: env CCPULSE_METRICS_PORT / free; -1: off"
    )
    worker.add_argument("--checkpoint-interval", type=float, default=2.0, help="seconds between checkpoints")
    worker.add_argument("--allowed-lateness", type=float, default=600.0, help="seconds (default 600)")
    worker.add_argument("--idle-exit", type=float, default=None, help="exit after this many idle seconds")
    worker.add_argument("--no-idempotence", action="store_true", help="for Tansu, which cannot do it")
    worker.add_argument(
        "--service-level-variant",
        default="EXCLUDE_SHORT",
        choices=("EXCLUDE_SHORT", "IGNORE_ABANDONS", "ABANDONS_POSITIVE", "ABANDONS_NEGATIVE"),
        help="how abandons enter the /metrics service level (snapshots carry the sums for any variant)",
    )
    worker.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    worker.set_defaults(func=cmd_worker)

    kpi = sub.add_parser("kpi", help="current KPIs from cc.kpi.snapshots")
    kpi_sub = kpi.add_subparsers(dest="action", required=True)
    show = kpi_sub.add_parser(
        "show", help="print the current KPIs per region x channel", epilog=KAFKA_SECURITY_EPILOG
    )
    show.add_argument("--region", action="append", help="region code, repeatable (default: all)")
    show.add_argument("--window", default="ROLLING_60M", choices=("ROLLING_15M", "ROLLING_60M", "TODAY"))
    show.add_argument("--bootstrap-servers", default=None, help=bootstrap_help)
    show.set_defaults(func=cmd_kpi_show)

    report = sub.add_parser("report", help="daily per-region HTML report with PNG charts, from history")
    report.add_argument("--date", required=True, help="YYYY-MM-DD (each region's local day)")
    report.add_argument("--out", default="report.html", help="HTML file; PNGs go to <name>_files/")
    report.set_defaults(func=cmd_report)

    whatif = sub.add_parser("whatif", help="baseline vs routing policy on identical simulated traffic")
    whatif.add_argument("--regions", default="", help="comma-separated region codes (default: all 67)")
    whatif.add_argument("--hours", type=float, default=24.0)
    whatif.add_argument("--seed", type=int, default=0)
    whatif.add_argument(
        "--start", default=None, help="ISO start with offset (default 2026-05-11T00:00+00:00)"
    )
    whatif.add_argument("--staffing", action="append", metavar="REGION=FACTOR", help="x planned agents")
    whatif.set_defaults(func=cmd_whatif)

    demo = sub.add_parser(
        "demo", help="the whole pipeline on the embedded broker (Tansu, no Java) with a live view"
    )
    demo.add_argument(
        "--duration", type=_duration, default=300.0, help="wall time, e.g. 60s, 5m (default 5m)"
    )
    demo.add_argument("--speed", type=float, default=288.0, help="x real time (default 288: a day in 5 min)")
    demo.add_argument("--regions", default="", help="comma-separated region codes (default: all 67)")
    demo.add_argument(
        "--metrics-port", type=int, default=None, help="default: CCPULSE_METRICS_PORT, else free"
    )
    demo.add_argument("--no-live", action="store_true", help="no live view (for scripts and CI)")
    demo.add_argument(
        "--contract", action="store_true", help="only the contract check: examples through Tansu"
    )
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "simulate":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "simulate":
        args.args = [a for a in extra if a != "--"]
    try:
        settings = load_settings()
    except ValueError as exc:
        err_console.print(f"[red]configuration error:[/red] {exc}")
        return 2
    func: Callable[[argparse.Namespace, Settings], int] = args.func
    try:
        return func(args, settings)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except Exception as exc:  # the CLI boundary: one clear line, not a traceback
        from streams.history.store import HistoryError
        from streams.services.base import ServiceError

        if isinstance(exc, ServiceError | HistoryError | KafkaSecurityError):
            err_console.print(f"[red]error:[/red] {exc}")
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
