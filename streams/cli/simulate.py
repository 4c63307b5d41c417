"""``python -m streams.cli.simulate``: simulate to a file or Kafka (until ``ccpulse simulate`` exists).

    python -m streams.cli.simulate --regions RU-MOW,RU-PRI --hours 2 --speed 60 --seed 1 \
        --to file --path /tmp/sim.bin [--duplicate 0.01 --late 0.01 --malformed 0.001]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from streams.cli.common import add_people_arguments, people_of
from streams.simulator.config import EDGE_SHAPES, Faults, SimConfig, TwinShrinkage
from streams.simulator.run import RunSummary, run
from streams.wire.kafka_config import KafkaSecurity

if TYPE_CHECKING:
    from streams.wire.codec import Codec


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m streams.cli.simulate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--regions", default="", help="comma-separated region codes (default: all 67)")
    span = parser.add_mutually_exclusive_group()
    span.add_argument("--hours", type=float, default=None, help="simulated hours of arrivals (default 1)")
    span.add_argument("--days", type=float, default=None, help="simulated days of arrivals")
    parser.add_argument("--speed", type=float, default=None, help="x real time (default: unpaced)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", default=None, help="ISO start with offset, e.g. 2026-05-11T00:00+00:00")
    parser.add_argument("--to", choices=("file", "kafka"), default="file")
    parser.add_argument("--path", type=Path, default=Path("simulated.bin"))
    parser.add_argument("--bootstrap-servers", default=None)
    parser.add_argument(
        "--faults",
        type=_faults,
        default=None,
        help="fault rates, e.g. duplicate=0.01,late=0.01,malformed=0.001 (or the three options below)",
    )
    parser.add_argument("--duplicate", type=float, default=0.0)
    parser.add_argument("--late", type=float, default=0.0)
    parser.add_argument("--malformed", type=float, default=0.0)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes for a file run, regions sharded (deterministic per seed and worker count)",
    )
    parser.add_argument("--truth", type=Path, default=None, help="CSV of ground-truth KPIs per minute")
    parser.add_argument(
        "--shapes",
        type=_shapes,
        default={},
        help="edge shapes, e.g. overflow=0.03,direct_answer=0.03,second_transfer=0.25,end_on_hold=0.25,"
        "abandon_end=0.25 or all=0.1 (SimConfig.<name>_share; docs/simulator.md)",
    )
    parser.add_argument(
        "--plan",
        type=Path,
        default=None,
        help="a plan file (ccpulse plan schedule): its regions' agents follow its shifts and breaks "
        "instead of the simulator's own staffing; without --regions, the plan's regions are simulated, "
        "without --start from the plan's first shift",
    )
    add_people_arguments(parser, 0.0, "with --plan; default 0: all present and adherent")
    args = parser.parse_args(argv)
    args.people = None
    if args.shrinkage:
        if args.plan is None:
            parser.error("--shrinkage applies to a plan's agents: give --plan")
        try:
            args.people = people_of(args)
        except ValueError as exc:
            parser.error(str(exc))
    args.hours = args.days * 24 if args.days is not None else (args.hours if args.hours is not None else 1.0)
    if args.faults is not None:
        args.duplicate, args.late, args.malformed = args.faults
    return args


def _faults(spec: str) -> tuple[float, float, float]:
    rates = {"duplicate": 0.0, "late": 0.0, "malformed": 0.0}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, value = part.partition("=")
        if name not in rates:
            msg = f"unknown fault {name!r}; expected duplicate, late or malformed"
            raise argparse.ArgumentTypeError(msg)
        try:
            rates[name] = float(value)
        except ValueError:
            msg = f"fault rate {part!r} is not NAME=NUMBER"
            raise argparse.ArgumentTypeError(msg) from None
    return rates["duplicate"], rates["late"], rates["malformed"]


def _shapes(spec: str) -> dict[str, float]:
    names = [name.removesuffix("_share") for name in EDGE_SHAPES]
    shares: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, value = part.partition("=")
        if name != "all" and name not in names:
            msg = f"unknown shape {name!r}; expected all or one of {', '.join(names)}"
            raise argparse.ArgumentTypeError(msg)
        try:
            share = float(value)
        except ValueError:
            msg = f"shape share {part!r} is not NAME=NUMBER"
            raise argparse.ArgumentTypeError(msg) from None
        if not 0.0 <= share <= 1.0:
            msg = f"shape share {part!r} is outside [0, 1]"
            raise argparse.ArgumentTypeError(msg)
        for one in names if name == "all" else [name]:
            shares[f"{one}_share"] = share
    return shares


def _config(
    shapes: dict[str, float], pseudonym_key: bytes | None, plan: Path | None = None,
    shrinkage: TwinShrinkage | None = None,
) -> SimConfig:  # fmt: skip
    config = SimConfig(**shapes)  # type: ignore[arg-type]  # names checked by _shapes
    if plan is not None:
        from streams.planning.plan_file import read_plan

        shifts = read_plan(plan).shifts
        regions = tuple(sorted({s.region for s in shifts}))
        config = replace(config, shifts=shifts, regions=regions or None, shrinkage=shrinkage)
    return replace(config, pseudonym_key=pseudonym_key) if pseudonym_key else config


def _run(
    args: argparse.Namespace,
    on_progress: Callable[[int, int], None],
    security: KafkaSecurity | None = None,
    pseudonym_key: bytes | None = None,
    codec: Codec | None = None,
) -> RunSummary:
    config = _config(args.shapes, pseudonym_key, args.plan, args.people)
    start = datetime.fromisoformat(args.start) if args.start else None
    if start is None and config.shifts:  # a plan without --start: from its first shift's hour
        first_ms = min(s.start_ms for s in config.shifts)
        start = datetime.fromtimestamp((first_ms - first_ms % 3_600_000) / 1000, UTC)
    return run(
        config=config,
        regions=[r.strip() for r in args.regions.split(",") if r.strip()] or None,
        duration_s=args.hours * 3600,
        speed=args.speed,
        seed=args.seed,
        out=args.to,
        path=args.path,
        bootstrap_servers=args.bootstrap_servers,
        kafka_security=security,
        start=start,
        faults=Faults(duplicate=args.duplicate, late=args.late, malformed=args.malformed),
        truth_path=args.truth,
        on_progress=on_progress,
        workers=args.workers,
        codec=codec,
    )


def main(
    argv: list[str] | None = None,
    security: KafkaSecurity | None = None,
    pseudonym_key: bytes | None = None,
    codec: Codec | None = None,
) -> None:
    """``security``: Kafka TLS / SASL, built by the composition root (`ccpulse simulate`);
    ``pseudonym_key``: the HMAC key for customer references (CCPULSE_PSEUDONYM_KEY[_FILE]),
    else the simulator's built-in test key; ``codec``: whose schema ids frame the messages
    (a Schema Registry's when CCPULSE_SCHEMA_REGISTRY_URL is set), else the pinned ids."""
    args = parse_args(argv)
    console = Console()
    columns = (TextColumn("simulating"), BarColumn(), TextColumn("{task.fields[messages]:,} messages"))
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("simulate", total=args.hours * 3_600_000, messages=0)
        report = lambda n, ms: progress.update(task, completed=ms, messages=n)  # noqa: E731
        summary = _run(args, report, security, pseudonym_key, codec)
    table = Table(title="simulation")
    table.add_column("topic")
    table.add_column("messages", justify="right")
    for topic, count in sorted(summary.by_topic.items()):
        table.add_row(topic, f"{count:,}")
    table.add_row("total", f"{summary.messages:,}")
    console.print(table)
    console.print(
        f"{summary.contacts:,} contacts, {summary.simulated_s / 3600:.2f} simulated h "
        f"in {summary.wall_s:.1f} s ({summary.messages_per_s:,.0f} messages/s)"
    )


if __name__ == "__main__":
    main()
