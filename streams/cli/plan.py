"""`ccpulse plan ...`: the parsers. The commands (streams/cli/plan_commands.py) load the
forecasting and solver libraries, so they are imported only when a plan command runs: every
other `ccpulse` command starts without them.

    ccpulse plan load-truth truth.csv            # simulator ground truth -> kpi_minute
    ccpulse plan forecast --week 2026-11-16 [--history-weeks 3] [--method mstl|naive] [--json]
    ccpulse plan requirements --week 2026-11-16 [--shrinkage 0.2] [--json]
    ccpulse plan schedule --week 2026-11-16 --out plan.json [--cap RU-MOW=900] [--json]
    ccpulse plan evaluate plan.json [--days N] [--report out.html] [--json]   # the digital twin
    ccpulse plan publish plan.json                                           # cc.staffing.plan
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from streams.cli.plan_evaluate import add_evaluate_parser
from streams.cli.plan_publish import add_publish_parser
from streams.planning.requirements import DEFAULT_SHRINKAGE
from streams.settings import Settings


def _lazy(name: str) -> Callable[[argparse.Namespace, Settings], int]:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from streams.cli import plan_commands as cli_plan_commands

        command: Callable[[argparse.Namespace, Settings], int] = getattr(cli_plan_commands, name)
        return command(args, settings)

    return run


cmd_plan_forecast = _lazy("cmd_plan_forecast")
cmd_plan_load_truth = _lazy("cmd_plan_load_truth")
cmd_plan_requirements = _lazy("cmd_plan_requirements")
cmd_plan_schedule = _lazy("cmd_plan_schedule")


def add_plan_parsers(sub: Any) -> None:
    plan = sub.add_parser(
        "plan", help="workforce planning: forecast, requirements, schedule (docs/planning.md)"
    )
    plan_sub = plan.add_subparsers(dest="plan_command", required=True)
    add_evaluate_parser(plan_sub)  # the plan through the digital twin (streams/planning/twin.py)
    add_publish_parser(plan_sub)  # to cc.staffing.plan and ClickHouse (streams/planning/publish.py)
    load = plan_sub.add_parser("load-truth", help="simulator ground-truth CSV(s) -> kpi_minute")
    load.add_argument("truth", nargs="+")
    load.add_argument("--json", action="store_true")
    load.set_defaults(func=cmd_plan_load_truth)
    for name, func, text in (
        ("forecast", cmd_plan_forecast, "offered and AHT per region x channel x 15 min"),
        ("requirements", cmd_plan_requirements, "agents per interval by Erlang A/C with shrinkage"),
        ("schedule", cmd_plan_schedule, "agents per shift variant for a week (HiGHS)"),
    ):
        p = plan_sub.add_parser(name, help=text)
        p.add_argument(
            "--week", required=True, help="the plan week's Monday, local in each region (YYYY-MM-DD)"
        )
        p.add_argument("--regions", default="", help="comma-separated region codes (default: all 67)")
        p.add_argument("--history-weeks", type=int, default=3)
        p.add_argument("--method", choices=("mstl", "naive"), default="mstl")
        p.add_argument("--shrinkage", type=float, default=DEFAULT_SHRINKAGE)
        p.add_argument("--json", action="store_true", help="one JSON document on stdout")
        p.set_defaults(func=func)
        if name == "schedule":
            p.add_argument("--out", default=None, help="write the plan file (streams/planning/plan_file.py)")
            p.add_argument("--plan-id", default=None)
            p.add_argument("--max-per-variant", type=int, default=50)
            p.add_argument(
                "--min-part-time", type=float, default=0.0, help="minimum share of part-time agents"
            )
            p.add_argument("--cap", action="append", default=[], help="REGION=HEADCOUNT (repeatable)")
            p.add_argument(
                "--pricing-budget", type=float, default=20.0, help="column generation seconds/region"
            )
            p.add_argument("--mip-time-limit", type=float, default=20.0, help="MIP seconds per region")
            p.add_argument(
                "--budget",
                type=float,
                default=None,
                help="seconds for all regions together, shared by demand (overrides the two above)",
            )
            p.add_argument(
                "--processes", type=int, default=1,
                help="regions planned in this many processes side by side, each with the whole --budget",
            )  # fmt: skip
