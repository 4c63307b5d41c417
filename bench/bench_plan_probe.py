"""How far is a channel's plan from the best integer plan? HiGHS branch and cut beside ccpulse.

    python bench/bench_plan_probe.py --plan-chdb DIR [--channels RU-KGD:EMAIL,RU-MOW:VOICE]
        [--seconds 600] [--restricted 2.0] [--json]

The week plan's gap (docs/planning.md) is measured against the LP relaxation over the whole
catalogue; how much of it is the LP's own integrality gap and how much the heuristics' is
what this asks, per channel of the bench week (the same history and week as
bench/bench_planning.py):

- ccpulse: ``solve_region`` alone on the channel (column generation to convergence, dive,
  local search, MIP), its paid hours and its bound;
- HiGHS over the *whole* catalogue (every variant an integer column; presolve, cuts,
  branch and bound, 1 thread) for ``--seconds``, started from ccpulse's plan: the best plan
  it finds and its dual bound, a valid lower bound on any integer plan;
- HiGHS over the variants whose reduced cost at the LP optimum is at most ``--restricted``
  hours (price-and-branch's column set, a few thousand) for ``--seconds``, also started
  from ccpulse's plan: its best and its bound (a bound on plans from those columns only).

Each HiGHS run's first incumbent is ccpulse's plan, so its best can only be lower; if it
is not, ``--seconds`` of branch and cut found nothing better.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import date
from pathlib import Path
from typing import Any

import highspy
import numpy as np
from bench_planning import week_inputs
from rich.console import Console
from rich.table import Table

from streams.planning.catalogue import build_catalogue
from streams.planning.colgen import generate
from streams.planning.master import Master, quiet_highs
from streams.planning.pipeline import region_need
from streams.planning.schedule import CoverageMatrix, Limits, solve_region


def demand(path: Path, monday: str) -> dict[tuple[str, str], np.ndarray]:
    """Agents to schedule per local week slot, per (region, channel) of the bench week."""
    fc, model, starts = week_inputs(path, date.fromisoformat(monday), 1)
    return {
        (region, channel): need
        for region, start in starts.items()
        for channel, need in region_need(fc, model, region, start).scheduled.items()
    }


def branch_and_cut(
    cover: CoverageMatrix, need: np.ndarray, columns: np.ndarray, start: dict[int, int], seconds: float
) -> dict[str, float | None]:
    """HiGHS's MIP over ``columns`` (catalogue variants), every slot of ``need`` covered,
    started from ``start`` (variant -> agents, every variant in ``columns``)."""
    cat = cover.catalogue
    rows = np.flatnonzero(need > 0)
    a = cover.by_variant.T.tocsc()[rows][:, columns].tocsc()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = int(columns.size), int(rows.size)
    lp.col_cost_ = cat.paid_hours[columns].astype(float)
    lp.col_lower_ = np.zeros(columns.size)
    lp.col_upper_ = np.full(columns.size, float(Limits().max_per_variant))
    lp.row_lower_ = need[rows].astype(float)
    lp.row_upper_ = np.full(rows.size, highspy.kHighsInf)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr
    lp.a_matrix_.index_ = a.indices
    lp.a_matrix_.value_ = a.data
    lp.integrality_ = [highspy.HighsVarType.kInteger] * int(columns.size)
    h = quiet_highs()
    h.setOptionValue("threads", 1)
    h.setOptionValue("time_limit", seconds)
    h.setOptionValue("mip_rel_gap", 1e-4)
    h.passModel(lp)
    position = {int(j): i for i, j in enumerate(columns)}
    x0 = np.zeros(columns.size)
    for j, agents in start.items():
        x0[position[j]] = agents
    h.setSolution(int(columns.size), np.arange(columns.size, dtype=np.int32), x0)
    t0 = time.perf_counter()
    h.run()
    info = h.getInfo()
    return {
        "columns": int(columns.size),
        "best": round(float(info.objective_function_value), 3),
        # none when presolve and the root were not done within the time
        "bound": float(np.ceil(info.mip_dual_bound - 1e-6)) if np.isfinite(info.mip_dual_bound) else None,
        "nodes": float(info.mip_node_count),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def probe(
    cover: CoverageMatrix, region: str, channel: str, need: np.ndarray, seconds: float, rc_max: float
) -> dict[str, Any]:
    t0 = time.perf_counter()
    ours = solve_region(region, {channel: need}, cover, Limits(pricing_budget_s=60.0))
    ours_s = time.perf_counter() - t0
    start = {j: a for (_, j), a in ours.agents.items()}
    # the LP optimum's reduced costs over the whole catalogue (column generation to the end)
    master = Master({channel: need}, Limits(), cover)
    generate(master, 120.0)
    reduced = master.price(channel, np.asarray(master.h.getSolution().row_dual))
    restricted = np.union1d(np.flatnonzero(reduced <= rc_max), np.asarray(sorted(start)))
    everything = np.arange(cover.catalogue.size)
    return {
        "channel": f"{region}:{channel}",
        "agent_slots": int(need.sum()),
        "lp_bound": ours.lp_bound,
        "ccpulse": {"paid_hours": ours.paid_hours, "seconds": round(ours_s, 1)},
        "highs_catalogue": branch_and_cut(cover, need, everything, start, seconds),
        "highs_restricted": branch_and_cut(cover, need, restricted, start, seconds),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--plan-chdb", type=Path, required=True)
    p.add_argument("--plan-week", default="2026-11-02")
    p.add_argument("--channels", default="RU-KGD:EMAIL,RU-KGD:MESSENGER,RU-MOW:VOICE")
    p.add_argument("--seconds", type=float, default=600.0, help="each HiGHS run's time limit")
    p.add_argument("--restricted", type=float, default=2.0, help="reduced cost limit of the restricted set")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    console = Console(stderr=args.json, emoji=False)
    needs = demand(args.plan_chdb, args.plan_week)
    cover = CoverageMatrix(build_catalogue())
    rows = []
    for item in args.channels.split(","):
        region, channel = item.split(":")
        console.print(f"{item}: ccpulse, then HiGHS {args.seconds:.0f} s twice ...")
        rows.append(probe(cover, region, channel, needs[(region, channel)], args.seconds, args.restricted))
    table = Table(title=f"integer plans vs bounds, HiGHS {args.seconds:.0f} s each (paid hours a week)")
    for col in (
        "channel",
        "LP bound",
        "ccpulse",
        "HiGHS all: best / bound",
        "HiGHS restricted: best / bound",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        full, rest = r["highs_catalogue"], r["highs_restricted"]
        table.add_row(
            r["channel"],
            f"{r['lp_bound']:.0f}",
            f"{r['ccpulse']['paid_hours']:.0f} ({r['ccpulse']['seconds']} s)",
            f"{full['best']:.0f} / {full['bound'] or '-'} ({full['columns']:,} cols)",
            f"{rest['best']:.0f} / {rest['bound'] or '-'} ({rest['columns']:,} cols)",
        )
    console.print(table)
    report = {"seconds": args.seconds, "channels": rows, "loadavg": [round(v, 2) for v in os.getloadavg()]}
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
