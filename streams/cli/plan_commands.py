"""The commands of `ccpulse plan ...` (parsers: streams/cli/plan.py, which imports this lazily):
forecast, requirements and a week's schedule from ClickHouse history.

    ccpulse plan load-truth truth.csv            # simulator ground truth -> kpi_minute
    ccpulse plan forecast --week 2026-11-16 [--history-weeks 3] [--method mstl|naive] [--json]
    ccpulse plan requirements --week 2026-11-16 [--shrinkage 0.2] [--json]
    ccpulse plan schedule --week 2026-11-16 --out plan.json [--cap RU-MOW=900] [--json]

`evaluate` (the plan through the digital twin) is added by its own module beside these.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, TimeElapsedColumn
from rich.table import Table

from streams.cli.history import open_history_store
from streams.domain.regions import DAY_MS, load_regions
from streams.planning.catalogue import build_catalogue
from streams.planning.forecast import Forecast, forecast, read_history
from streams.planning.pipeline import CHANNELS, horizon, plan_week, region_need, week_starts
from streams.planning.plan_file import write_plan
from streams.planning.requirements import RequirementModel, default_rules
from streams.planning.schedule import Limits
from streams.settings import Settings


def _regions(args: argparse.Namespace) -> list[str]:
    if args.regions:
        return [r.strip() for r in args.regions.split(",") if r.strip()]
    return [r.code for r in load_regions()]


def _forecast(
    args: argparse.Namespace, settings: Settings, console: Console
) -> tuple[Forecast, dict[str, int]]:
    regions = _regions(args)
    starts = week_starts(date.fromisoformat(args.week), regions)
    first, slots = horizon(starts)
    store = open_history_store(settings)
    try:
        with console.status("reading history from ClickHouse"):
            history = read_history(
                store, settings.clickhouse_database, first - args.history_weeks * 7 * DAY_MS, first, regions
            )
    finally:
        store.close()
    if not history.offered:
        msg = f"no kpi_minute history in the {args.history_weeks} weeks before {args.week}"
        raise SystemExit(msg)
    with console.status(f"fitting {args.method} on {len(history.offered)} series"):
        fc = forecast(history, slots, args.method)
    return fc, starts


def cmd_plan_forecast(args: argparse.Namespace, settings: Settings) -> int:
    console = Console(stderr=args.json)
    fc, starts = _forecast(args, settings, console)
    totals: dict[str, list[float]] = {c: [0.0, 0.0] for c in CHANNELS}
    for (region, channel), offered in fc.offered.items():
        first = (starts[region] - fc.start_ms) // 900_000
        week = offered[first : first + 672]
        totals[channel][0] += float(week.sum())
        totals[channel][1] += float((week * fc.aht_s[(region, channel)][first : first + 672]).sum())
    rows = [
        {"channel": c, "offered": round(o), "aht_s": round(h / o, 1) if o else None}
        for c, (o, h) in totals.items()
    ]
    if args.json:
        print(json.dumps({"week": args.week, "method": fc.method, "regions": len(starts), "channels": rows}))
        return 0
    table = Table(title=f"forecast for the week of {args.week} ({fc.method}, {len(starts)} regions)")
    for col in ("channel", "offered", "AHT s"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r["channel"]), f"{r['offered']:,}", str(r["aht_s"]))
    console.print(table)
    return 0


def _model(args: argparse.Namespace) -> RequirementModel:
    return RequirementModel(default_rules(), shrinkage=args.shrinkage)


def cmd_plan_requirements(args: argparse.Namespace, settings: Settings) -> int:
    console = Console(stderr=args.json)
    fc, starts = _forecast(args, settings, console)
    model = _model(args)
    rows: dict[str, dict[str, float]] = {
        c: {"floor_hours": 0.0, "scheduled_hours": 0.0, "peak": 0} for c in CHANNELS
    }
    for region, start in starts.items():
        need = region_need(fc, model, region, start)
        for c in CHANNELS:
            rows[c]["floor_hours"] += float(need.on_floor[c].sum()) / 4
            rows[c]["scheduled_hours"] += float(need.scheduled[c].sum()) / 4
            rows[c]["peak"] = max(rows[c]["peak"], int(need.scheduled[c].max()))
    if args.json:
        print(json.dumps({"week": args.week, "shrinkage": model.shrinkage, "channels": rows}))
        return 0
    table = Table(title=f"requirements, week of {args.week} (shrinkage {model.shrinkage:.0%})")
    for col in ("channel", "agent-hours on the floor", "agent-hours to schedule", "peak in one region"):
        table.add_column(col, justify="right")
    for c, r in rows.items():
        table.add_row(c, f"{r['floor_hours']:,.0f}", f"{r['scheduled_hours']:,.0f}", str(r["peak"]))
    console.print(table)
    return 0


def _caps(spec: list[str]) -> dict[str, int]:
    caps = {}
    for item in spec:
        region, _, value = item.partition("=")
        caps[region] = int(value)
    return caps


def cmd_plan_schedule(args: argparse.Namespace, settings: Settings) -> int:
    console = Console(stderr=args.json)
    fc, starts = _forecast(args, settings, console)
    catalogue = build_catalogue()
    limits = Limits(
        max_per_variant=args.max_per_variant,
        min_part_time_share=args.min_part_time,
        pricing_budget_s=args.pricing_budget,
        mip_time_limit_s=args.mip_time_limit,
    )
    with Progress(
        *Progress.get_default_columns(), TimeElapsedColumn(), console=console, transient=True
    ) as bar:
        task = bar.add_task(
            f"scheduling {len(starts)} regions over {catalogue.size:,} variants", total=len(starts)
        )

        def advance(_region: str) -> None:
            bar.advance(task)
            if args.budget is not None and bar.tasks[0].completed >= len(starts):
                # what is left of the budget goes on (streams/planning/polish.py): say so
                bar.update(task, description="all regions planned; the rest of --budget polishes")

        week = plan_week(
            args.plan_id or f"plan-{args.week}",
            fc,
            _model(args),
            catalogue,
            starts,
            limits,
            _caps(args.cap),
            progress=advance,
            budget_s=args.budget,
            processes=args.processes,
        )
    if args.out:
        write_plan(Path(args.out), week.plan)
    summary = _summary(week, catalogue.size)
    if args.json:
        print(json.dumps(summary))
        return 0
    table = Table(title=f"schedule, week of {args.week}: {catalogue.size:,} variants, {week.seconds:.1f} s")
    for col in ("region", "paid hours", "headcount", "LP bound", "gap", "under-covered slots", "columns"):
        table.add_column(col, justify="right")
    for r in summary["regions"]:
        table.add_row(
            r["region"],
            f"{r['paid_hours']:,.0f}",
            str(r["headcount"]),
            f"{r['lp_bound']:,.1f}",
            f"{r['gap']:.2%}",
            str(r["under_slots"]),
            str(r["columns"]),
        )
    console.print(table)
    console.print(f"total paid hours {summary['paid_hours']:,.0f}; worst gap {summary['max_gap']:.2%}")
    return 0


def _summary(week: Any, variants: int) -> dict[str, Any]:
    regions = [
        {
            "region": r.region,
            "paid_hours": r.paid_hours,
            "headcount": r.headcount,
            "lp_bound": r.lp_bound,
            "objective": r.objective,
            "gap": r.gap,
            "under_slots": r.under_slots,
            "columns": r.columns,
            "rounds": r.rounds,
            "lp_s": round(r.lp_seconds, 2),
            "mip_s": round(r.mip_seconds, 2),
            "lp_value_generated_columns": r.stats.get("lp_value"),
            "channels_converged": r.stats.get("converged"),
            "polish_solves": int(r.stats.get("polish_solves", 0)),
            "polish_improved": int(r.stats.get("polish_improved", 0)),
        }
        for r in week.results.values()
    ]
    return {
        "variants": variants,
        "seconds": round(week.seconds, 1),
        "regions": regions,
        "paid_hours": sum(r["paid_hours"] for r in regions),
        "lp_bound": sum(r["lp_bound"] for r in regions),
        "objective": sum(r["objective"] for r in regions),
        "max_gap": max((r["gap"] for r in regions), default=0.0),
        "gap": 1 - sum(r["lp_bound"] for r in regions) / max(sum(r["objective"] for r in regions), 1e-9),
        "under_slots": sum(r["under_slots"] for r in regions),
    }


def cmd_plan_load_truth(args: argparse.Namespace, settings: Settings) -> int:
    from streams.history.migrate import migrate
    from streams.planning.truth_history import load_truth

    store = open_history_store(settings)
    try:
        migrate(store)
        rows = load_truth(store, settings.clickhouse_database, [Path(p) for p in args.truth])
    finally:
        store.close()
    print(json.dumps({"rows": rows}) if args.json else f"{rows:,} minute rows into kpi_minute")
    return 0
