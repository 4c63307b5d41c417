"""`ccpulse` command line: the composition root.

Reads the settings once, wires adapters and calls library code with plain values.
Human output is rich tables; `--json` gives machine output.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from streams.cli.common import (
    KAFKA_SECURITY_EPILOG,
    _check_secured,
    _client_config,
    _default_bootstrap,
    _emit,
    _fmt,
    _pseudonym_key,
    console,
    err_console,
)
from streams.cli.history import add_history_parsers, open_history_store  # noqa: F401 - re-exported
from streams.cli.plan import add_plan_parsers
from streams.cli.schemas import add_schemas_parsers
from streams.cli.services import (
    DEFAULT_UP,
    SERVICE_NAMES,
    cmd_services_down,
    cmd_services_prepare,
    cmd_services_status,
    cmd_services_up,
    cmd_topics_apply,
)
from streams.services.kafka import DEFAULT_CACHE, KAFKA_VERSION
from streams.settings import Settings, load_settings
from streams.wire.kafka_config import KafkaSecurityError


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from streams.cli.simulate import main as simulate_main
    from streams.cli.simulate import parse_args

    argv = list(args.args)
    if "--bootstrap-servers" not in argv:
        argv += ["--bootstrap-servers", _default_bootstrap(settings)]
    security = settings.kafka_security()
    options = parse_args(argv)
    if options.to == "kafka":
        _check_secured(options.bootstrap_servers, security)
    key = settings.pseudonym_key.get_secret_value().encode() if settings.pseudonym_key else None
    codec = None
    if (settings.schema_registry_url or "").strip():  # frames carry the registry's ids, as the worker's
        from streams.wire.codec import Codec

        codec = Codec.for_registry_url(settings.schema_registry_url)
    simulate_main(argv, security=security, pseudonym_key=key, codec=codec)
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import logging

    from streams.domain.kpi import ServiceLevelVariant
    from streams.domain.regions import region_codes
    from streams.jobs.kpi_apply import KpiConfig
    from streams.jobs.runner import run_worker
    from streams.jobs.worker import WorkerOptions
    from streams.wire.codec import Codec

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    options = WorkerOptions(
        group_id=args.group,
        app_id=args.group,
        checkpoint_interval_s=args.checkpoint_interval,
        idempotent_producer=not args.no_idempotence,
        transactional=args.transactions and not args.no_idempotence,
        commit_interval_s=args.commit_interval,
        kpi=KpiConfig(allowed_lateness_ms=int(args.allowed_lateness * 1000)),
        pseudonym_key=_pseudonym_key(settings),
        routing_regions=tuple(args.routing_regions.split(",")) if args.routing_regions else None,
        routing_max_wait_s=args.routing_max_wait,
    )
    codec = Codec.for_registry_url(settings.schema_registry_url, known_regions=region_codes())
    port = None if args.metrics_port < 0 else (args.metrics_port or settings.metrics_port)
    variant = ServiceLevelVariant(args.service_level_variant)
    summary = run_worker(
        _client_config(args, settings), codec, options, settings.metrics_host, port, args.idle_exit, variant
    )
    print(json.dumps(summary, default=str), flush=True)
    return 3 if summary["event"] == "fenced" else 0


def cmd_kpi_show(args: argparse.Namespace, settings: Settings) -> int:
    from streams.cli.kpi_tables import channel_table
    from streams.domain.kpi import COUNTERS, initialize
    from streams.domain.targets import channel_rows
    from streams.jobs.snapshot_reader import latest_snapshots
    from streams.wire.codec import Codec

    snapshots = latest_snapshots(_client_config(args, settings), Codec.pinned())
    rows: list[dict[str, object]] = []
    by_channel: dict[str, dict[str, int]] = {}
    for _key, s in sorted(snapshots.items()):
        if s["window"] != args.window or (args.region and s["region"] not in args.region):
            continue
        # a snapshot carries the sums except short_offered, which equals short_abandoned over a window
        # up to contacts straddling its edges (close enough for a roll-up's abandonment rate)
        counters = initialize() | {name: int(s[name]) for name in COUNTERS if name in s}
        counters["short_offered"] = counters["short_abandoned"]
        total = by_channel.setdefault(s["channel"], initialize())
        for name in COUNTERS:
            total[name] += counters[name]
        (row,) = [r for r in channel_rows({s["channel"]: counters}) if r.channel.value == s["channel"]]
        rows.append(
            {
                "region": s["region"], "channel": s["channel"], "offered": s["offered"],
                "answered": s["answered"], "abandoned": s["abandoned"],
                "service_level": _fmt(s["service_level"]), "sl_threshold_s": row.sl_threshold_s,
                "sl_vs_80pct": row.service_level.verdict,
                "asa_s": _fmt(s["asa_seconds"], 1), "asa_target_s": row.asa.target,
                "asa_verdict": row.asa.verdict,
                "aht_s": _fmt(s["aht_seconds"], 1), "aht_target_s": row.aht.target,
                "aht_verdict": row.aht.verdict,
                "abandonment": _fmt(s["abandonment_rate"]),
                "fcr": _fmt(s["first_line_resolution"]), "csat_top_box": _fmt(s["csat_top_box"]),
                "version": s["version"],
            }
        )  # fmt: skip
    if rows and not args.json:  # first the roll-up per channel, each against its own targets
        console.print(channel_table(by_channel, f"per channel, {len({r['region'] for r in rows})} regions, "
                                                f"window {args.window}"))  # fmt: skip
    _emit(args, rows, f"KPIs per region x channel, window {args.window} (cc.kpi.snapshots)")
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


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    if args.contract:
        from streams.cli.demo_contract import run_contract_demo

        return run_contract_demo(console=console, json_output=args.json, state_dir=settings.state_dir)
    from streams.cli.demo import DemoOptions, run_demo

    options = DemoOptions(
        duration_s=args.duration,
        speed=args.speed,
        regions=tuple(r.strip() for r in args.regions.split(",") if r.strip()) or None,
        live=not args.no_live,
        metrics_port=args.metrics_port if args.metrics_port is not None else settings.metrics_port,
        min_region_contacts=args.min_region_contacts,
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
    prepare.add_argument(
        "--registry", action="store_true", help="also build Apicurio Registry (Quarkus build step, once)"
    )
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

    add_history_parsers(sub)
    add_schemas_parsers(sub)
    add_plan_parsers(sub)

    simulate = sub.add_parser(
        "simulate",
        help="the digital twin: simulated traffic to a file or Kafka (`ccpulse simulate -- --help`)",
        add_help=False,
        description="Options after the command are the simulator's; see docs/simulator.md.",
    )
    simulate.set_defaults(func=cmd_simulate, args=[])

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
    worker.add_argument("--idle-exit", type=float, default=None, help="exit when idle this long, all read")
    worker.add_argument("--no-idempotence", action="store_true", help="for Tansu, which cannot do it")
    worker.add_argument(
        "--transactions", action="store_true",
        help="outputs in Kafka transactions with the input offsets: zombie fencing (Apache Kafka only)",
    )  # fmt: skip
    worker.add_argument(
        "--commit-interval", type=float, default=0.1, metavar="S",
        help="transactional: seconds between commits (snapshots visible to read_committed readers at each)",
    )  # fmt: skip
    worker.add_argument(
        "--routing-regions", default=None,
        help="comma-separated regions whose queue state a routing decision waits for "
        "(default: those in cc.queue.state; docs/routing.md)",
    )  # fmt: skip
    worker.add_argument(
        "--routing-max-wait", type=float, default=5.0,
        help="seconds of wall time a routing decision waits for its inputs as of its time (default 5)",
    )  # fmt: skip
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
        "--min-region-contacts", type=int, default=20,
        help="rank a region among the worst only with at least this many contacts in 60 min (default 20)",
    )  # fmt: skip
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
