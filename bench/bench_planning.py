"""Workforce planning figures (issue 18): catalogue size, forecast accuracy, a week's plan,
and pyworkforce's CP-SAT MinRequiredResources beside ccpulse's solver on one region.

    python bench/bench_planning.py --accuracy-chdb DIR --plan-chdb DIR [--budget 420] [--json]

``--budget S`` shares S seconds of scheduling over the 67 regions by demand (else
``--pricing-budget`` / ``--mip-time-limit`` per region). The week plan's summary gives the
bound, the LP over the generated columns, the rounding heuristic alone and the gap per
region beside the paid hours, so a gap can be read as "bound" or "integer solution".

Both chdb directories hold kpi_minute history loaded from the simulator's ground truth
(`ccpulse plan load-truth`); docs/planning.md says which simulation runs made them.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from streams.domain.regions import DAY_MS, load_regions
from streams.history.chdb_store import ChdbStore
from streams.planning.catalogue import SLOTS_PER_DAY, build_catalogue
from streams.planning.forecast import accuracy, forecast, mstl_offered, read_history, seasonal_naive
from streams.planning.pipeline import horizon, plan_week, region_need, week_starts
from streams.planning.requirements import RequirementModel, default_rules
from streams.planning.schedule import CoverageMatrix, Limits, planned_on_floor, solve_region

WEEK_MS = 7 * DAY_MS


def forecast_accuracy(path: Path, start_ms: int, weeks: int) -> dict[str, Any]:
    store = ChdbStore(path, database="ccpulse")
    out: dict[str, Any] = {"held_out": []}
    for k in range(2, weeks):
        train = read_history(store, "ccpulse", start_ms, start_ms + k * WEEK_MS)
        actual = read_history(store, "ccpulse", start_ms + k * WEEK_MS, start_ms + (k + 1) * WEEK_MS)
        t0 = time.perf_counter()
        model = mstl_offered(train, 672)
        fit_s = time.perf_counter() - t0
        out["held_out"].append(
            {
                "week": k + 1,
                "train_weeks": k,
                "series": len(train.offered),
                "mstl_fit_s": round(fit_s, 1),
                "mstl": accuracy(model, actual.offered),
                "naive": accuracy(seasonal_naive(train, 672), actual.offered),
            }
        )
    store.close()
    return out


def week_inputs(path: Path, monday: date, history_weeks: int) -> tuple[Any, RequirementModel, dict[str, int]]:
    """The bench week's seasonal-naive forecast from ``history_weeks`` of history in ``path``,
    the default requirement model and every region's local week start (bench_plan_probe.py too)."""
    store = ChdbStore(path, database="ccpulse")
    starts = week_starts(monday, [r.code for r in load_regions()])
    first, slots = horizon(starts)
    history = read_history(store, "ccpulse", first - history_weeks * WEEK_MS, first)
    store.close()
    return forecast(history, slots, "naive"), RequirementModel(default_rules()), starts


def week_plan(
    path: Path,
    monday: date,
    history_weeks: int,
    limits: Limits,
    budget_s: float | None = None,
    processes: int = 1,
) -> tuple[dict[str, Any], Any]:
    fc, model, starts = week_inputs(path, monday, history_weeks)
    t0 = time.perf_counter()
    week = plan_week(
        "bench", fc, model, build_catalogue(), starts, limits, budget_s=budget_s, processes=processes
    )
    results = list(week.results.values())
    stat = lambda key: float(np.nansum([r.stats.get(key, 0.0) for r in results]))  # noqa: E731
    summary = {
        "regions": len(results),
        "seconds": round(time.perf_counter() - t0, 1),
        "paid_hours": round(sum(r.paid_hours for r in results)),
        "lp_bound": round(sum(r.lp_bound for r in results)),
        "objective": round(sum(r.objective for r in results)),
        "gap_total": round(1 - sum(r.lp_bound for r in results) / sum(r.objective for r in results), 4),
        "max_gap": round(max(r.gap for r in results), 4),
        "under_covered_slots": sum(r.under_slots for r in results),
        "lp_value_generated_columns": round(stat("lp_value")),
        "rounding_heuristic": round(stat("heuristic")),
        "dive": round(stat("dive")),
        "after_local_search": round(stat("local_search")),
        "channels_converged": int(stat("converged")),
        "channels": sum(len(r.under) for r in results),
        "regions_gap_le_1pct": sum(r.gap <= 0.01 for r in results),
        "regions_gap_le_5pct": sum(r.gap <= 0.05 for r in results),
        "gap_by_region": {r.region: round(r.gap, 4) for r in results},
        "cg_rounds": int(stat("rounds")),
        "cg_mispriced": int(stat("mispriced")),
        "cg_s": round(stat("cg_seconds"), 1),
        "polish_solves": int(stat("polish_solves")),
        "polish_improved": int(stat("polish_improved")),
        "polish_s": round(stat("polish_seconds"), 1),
        "by_channel": by_channel(results),
        "lp_s": round(sum(r.lp_seconds for r in results), 1),
        "mip_s": round(sum(r.mip_seconds for r in results), 1),
    }
    return summary, (fc, model, starts)


def by_channel(results: list[Any]) -> dict[str, dict[str, float]]:
    """Per channel over every region: bound, LP over the generated columns, each integer
    step and the plan, converged channels, the gap: where the paid hours above the bound go."""
    out: dict[str, dict[str, float]] = {}
    keys = ("bound", "lp_value", "heuristic", "dive", "local_search", "objective", "converged", "rounds")
    for r in results:
        for k, s in r.by_channel.items():
            row = out.setdefault(k, dict.fromkeys(keys, 0.0))
            for key in keys:
                row[key] += float(np.nan_to_num(s.get(key, 0.0)))
    for row in out.values():
        row["gap"] = 1 - row["bound"] / row["objective"] if row["objective"] else 0.0
        row["gap_lp"] = 1 - row["lp_value"] / row["objective"] if row["objective"] else 0.0
        for key in row:
            row[key] = round(row[key], 4 if key.startswith("gap") else 1)
    return out


def pyworkforce_vs_ccpulse(ctx: Any, region: str, search_s: float, limits: Limits) -> dict[str, Any]:
    from pyworkforce.scheduling import MinRequiredResources

    fc, model, starts = ctx
    need = region_need(fc, model, region, starts[region]).scheduled["VOICE"]
    catalogue = build_catalogue()
    shapes = [s for s in catalogue.shapes if s.start_slot + s.length_slots <= SLOTS_PER_DAY]
    coverage = {}
    for i, s in enumerate(shapes):
        row = [0] * SLOTS_PER_DAY
        for k in s.on_floor_offsets():
            row[s.start_slot + k] = 1
        coverage[f"s{i}"] = row
    cost = {f"s{i}": s.length_slots / 4 for i, s in enumerate(shapes)}
    required = need.reshape(7, SLOTS_PER_DAY).tolist()
    t0 = time.perf_counter()
    solver = MinRequiredResources(
        num_days=7,
        periods=SLOTS_PER_DAY,
        shifts_coverage=coverage,
        required_resources=required,
        max_period_concurrency=10_000,
        max_shift_concurrency=1_000,
        cost_dict=cost,
        max_search_time=search_s,
        num_search_workers=2,
    )
    sol = solver.solve()
    pw_s = time.perf_counter() - t0
    pw_hours = float(sol.get("cost", float("nan")))
    cover = CoverageMatrix(catalogue)
    t0 = time.perf_counter()
    ours = solve_region(region, {"VOICE": need}, cover, limits)
    cc_s = time.perf_counter() - t0
    floor = planned_on_floor(ours, cover, "VOICE")
    return {
        "region": region,
        "slots_needing_agents": int((need > 0).sum()),
        "pyworkforce": {
            "daily_shifts": len(shapes),
            "status": sol.get("status"),
            "paid_hours": pw_hours,
            "seconds": round(pw_s, 1),
            "covered": sol.get("status") in ("OPTIMAL", "FEASIBLE"),
        },
        "ccpulse": {
            "variants": catalogue.size,
            "paid_hours": ours.paid_hours,
            "lp_bound": round(ours.lp_bound, 1),
            "gap": round(ours.gap, 4),
            "seconds": round(cc_s, 1),
            "under_covered_slots": int(((floor + ours.under["VOICE"]) < need).sum() + ours.under_slots),
        },
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--accuracy-chdb", type=Path, required=True)
    p.add_argument("--accuracy-start-ms", type=int, default=1792357200000)  # local Monday 2026-10-19 (MSK)
    p.add_argument("--accuracy-weeks", type=int, default=4)
    p.add_argument("--plan-chdb", type=Path, required=True)
    p.add_argument("--plan-week", default="2026-11-02")
    p.add_argument("--plan-history-weeks", type=int, default=1)
    p.add_argument("--pricing-budget", type=float, default=3.0)
    p.add_argument("--mip-time-limit", type=float, default=3.0)
    p.add_argument("--budget", type=float, default=None, help="seconds for all schedules, by demand")
    p.add_argument("--processes", type=int, default=1, help="regions planned side by side (plan_week)")
    p.add_argument("--pyworkforce-region", default="RU-MOW")
    p.add_argument("--pyworkforce-seconds", type=float, default=60.0)
    p.add_argument("--skip", default="", help="comma list of: accuracy, plan, pyworkforce")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    console = Console(stderr=args.json)
    skip = set(args.skip.split(","))
    limits = Limits(pricing_budget_s=args.pricing_budget, mip_time_limit_s=args.mip_time_limit)
    report: dict[str, Any] = {"catalogue_variants": build_catalogue().size}
    console.print(f"catalogue: {report['catalogue_variants']:,} variants")
    if "accuracy" not in skip:
        report["accuracy"] = forecast_accuracy(
            args.accuracy_chdb, args.accuracy_start_ms, args.accuracy_weeks
        )
        table = Table(title="offered forecast, held-out simulated weeks: MSTL vs seasonal naive")
        for col in ("week", "channel", "MSTL WAPE", "MSTL bias", "naive WAPE", "naive bias"):
            table.add_column(col, justify="right")
        for h in report["accuracy"]["held_out"]:
            for c, (w, b) in h["mstl"].items():
                nw, nb = h["naive"][c]
                table.add_row(str(h["week"]), c, f"{w:.1%}", f"{b:+.1%}", f"{nw:.1%}", f"{nb:+.1%}")
        console.print(table)
    ctx = None
    if "plan" not in skip or "pyworkforce" not in skip:
        report["plan"], ctx = week_plan(
            args.plan_chdb,
            date.fromisoformat(args.plan_week),
            args.plan_history_weeks,
            limits,
            args.budget,
            args.processes,
        )
        console.print("week plan:", report["plan"])
    if "pyworkforce" not in skip and ctx is not None:
        report["pyworkforce"] = pyworkforce_vs_ccpulse(
            ctx, args.pyworkforce_region, args.pyworkforce_seconds, limits
        )
        console.print("pyworkforce vs ccpulse:", report["pyworkforce"])
    report["loadavg"] = list(np.round(np.array(__import__("os").getloadavg()), 2))
    if args.json:
        print(json.dumps(report, default=float))


if __name__ == "__main__":
    main()
