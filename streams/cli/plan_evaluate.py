"""`ccpulse plan evaluate PLAN.json`: the plan through the digital twin (streams/planning/twin.py).

People get a rich table per region x channel (the day against the targets) and the worst
intervals; scripts get JSON (`--json`, every interval); `--report out.html` writes the HTML
report with its PNG charts (streams/planning/report.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from streams.cli.common import add_people_arguments, console, err_console, people_of
from streams.planning.requirements import DEFAULT_SHRINKAGE
from streams.settings import Settings


def add_evaluate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """``evaluate`` under ``ccpulse plan``."""
    evaluate = subparsers.add_parser(
        "evaluate",
        help="run a plan through the digital twin: SL, ASA, abandonment per interval vs target",
        description="Simulate the plan's span with its agents following its shifts and breaks; "
        "report service level, ASA and abandonment per region x channel x 15 minutes and for the "
        "span, against each channel's target, beside the plan's required and planned agents.",
    )
    evaluate.add_argument("plan", type=Path, metavar="PLAN.json", help="plan file (ccpulse plan schedule)")
    evaluate.add_argument("--regions", default="", help="comma-separated region codes (default: the plan's)")
    evaluate.add_argument(
        "--days", type=float, default=None, help="days from the plan's start (default: all)"
    )
    evaluate.add_argument("--seed", type=int, default=0, help="simulator seed (default 0)")
    add_people_arguments(evaluate, DEFAULT_SHRINKAGE, "default %(default)s, the planner's")
    evaluate.add_argument(
        "--adherent",
        action="store_true",
        help="every planned agent present and on the phones outside breaks (no shrinkage)",
    )
    evaluate.add_argument("--report", type=Path, default=None, help="also write an HTML report here")
    evaluate.add_argument(  # SUPPRESS: an absent flag keeps `ccpulse --json plan evaluate`
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable JSON output"
    )
    evaluate.set_defaults(func=cmd_plan_evaluate)
    return evaluate


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def cmd_plan_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from streams.planning.plan_file import read_plan
    from streams.planning.twin import evaluate

    del settings  # the twin runs in-process: no services
    try:
        plan = read_plan(args.plan)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        err_console.print(f"[red]error:[/red] cannot read plan {args.plan}: {exc}")
        return 2
    regions = [r.strip() for r in args.regions.split(",") if r.strip()] or None
    columns = (TextColumn("simulating the plan"), BarColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=err_console, transient=True, disable=args.json) as progress:
            task = progress.add_task("twin", total=1)
            report = lambda done, total: progress.update(task, completed=done, total=total)  # noqa: E731
            shrinkage = None if args.adherent else people_of(args)
            result = evaluate(
                plan, regions=regions, days=args.days, seed=args.seed, on_progress=report, shrinkage=shrinkage
            )
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        return 2
    if args.report is not None:
        from streams.planning.report import render

        render(result, args.report)
    if args.json:
        print(json.dumps(result.as_dict()))
        return 0
    people = (
        "all agents present and adherent"
        if result.shrinkage is None
        else (f"{result.shrinkage.absence:.0%} absent, {result.shrinkage.offline:.1%} offline")
    )
    table = Table(title=f"plan {result.plan_id} in the digital twin (seed {result.seed}; {people})")
    for name in ("region", "channel", "offered", "SL (target 80 %)", "ASA s (target)", "abandon",
                 "intervals < 80 %", "agent-h planned / required"):  # fmt: skip
        table.add_column(name, justify="left" if name in ("region", "channel") else "right")
    for d in result.days:
        c = d.counts
        sl = f"{_pct(c.service_level)} {d.service_level.verdict}"
        asa = "–" if c.asa_s is None else f"{c.asa_s:.1f} ({d.asa.target:g}) {d.asa.verdict}"
        required = "–" if d.required_agent_hours is None else f"{d.required_agent_hours:.1f}"
        table.add_row(
            d.region, d.channel, str(c.offered), sl, asa, _pct(c.abandonment),
            f"{d.intervals_below_target} of {d.intervals}", f"{d.planned_agent_hours:.1f} / {required}",
        )  # fmt: skip
    console.print(table)
    worst = sorted(
        (i for i in result.intervals if i.sl_mark.met is False),
        key=lambda i: (i.counts.service_level or 0.0, i.region, i.channel, i.interval_start_ms),
    )[:10]
    if worst:
        console.print("worst intervals (UTC): " + "; ".join(
            f"{i.region} {i.channel} {i.as_dict()['interval_start']} SL {_pct(i.counts.service_level)} "
            f"planned {i.planned_agents} required {'–' if i.required_agents is None else i.required_agents}"
            for i in worst
        ))  # fmt: skip
    if args.report is not None:
        console.print(f"report: {args.report}")
    return 0
