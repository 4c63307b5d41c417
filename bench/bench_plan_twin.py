"""A planned week through the digital twin: where does the plan fall short, and why?

    .venv/bin/python bench/bench_plan_twin.py [--regions RU-MOW,RU-SPE,RU-PRI,RU-KGD] [--days 7] \
        [--seed 1] [--plan PLAN.json] [--shrinkage 0.2 --absence 0.05 | --adherent] [--json]

The plan is the scheduler's when ``--plan`` names a plan file (``ccpulse plan schedule
--out``: agents per catalogue shift variant with its breaks and lunch, per region x channel,
plus the forecast and requirement per interval), restricted to ``--regions``; without it,
the Erlang baseline (streams/planning/baseline.py: the simulator's own 15-minute Erlang A
requirement covered by greedy 8 h shifts with a 15 min break and a 30 min lunch).
``evaluate`` (streams/planning/twin.py) runs it in the twin; with ``--plan`` the planner's
shrinkage (0.20) is played out on its agents (absent for a shift, off the phones for an
interval), which the scheduler's plan was sized for; the baseline, sized on the floor, runs
adherent. Printed per region x channel: SL, ASA and abandonment over the span against the
targets, planned vs required agent-hours; per region x channel x local day: SL against the
80 % target and the day's busyness factor G (the simulator's hidden day-level factor, mean
1, that no forecast knows; read back from the arrival model with the same seed); and the
intervals below the 80 % target with at least 10 contacts, each with its likeliest cause:

- ``below requirement``: the plan puts fewer agents on the floor than required;
- ``burst``: offered at least 20 % above the plan's forecast (busyness, Poisson);
- ``break``: agents of the plan are on a break (BREAK / LUNCH) in that interval and the
  floor is at most the requirement (without the break there would be slack);
- ``variance``: none of these: the floor meets the requirement and traffic is near the
  forecast (short-term randomness of arrivals and handle times, small queues).

Figures in docs/planning.md, "Proof in the digital twin".
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime

from streams.planning.baseline import erlang_plan
from streams.planning.plan_file import PlanFile, read_plan
from streams.planning.requirements import DEFAULT_SHRINKAGE
from streams.planning.twin import Counts, Evaluation, IntervalResult, evaluate
from streams.simulator.arrivals import HOUR_MS, ArrivalModel
from streams.simulator.config import SimConfig, TwinShrinkage
from streams.simulator.run import DEFAULT_START, Simulation, select_regions
from streams.simulator.truth import MinuteKpi

MIN_CONTACTS = 10  # answered + abandoned for an interval to count as a miss


def on_shift_by_interval(plan_shifts: object) -> dict[tuple[str, str, int], int]:
    out: dict[tuple[str, str, int], int] = defaultdict(int)
    for s in plan_shifts:  # type: ignore[attr-defined]
        for t in range(s.start_ms, s.end_ms, 900_000):
            out[(s.region, s.channel, t)] += s.agents
    return out


def cause(i: IntervalResult, on_shift: int) -> str:
    required = i.required_agents or 0.0
    if i.planned_agents < required:
        return "below requirement"
    if i.forecast_offered and i.counts.offered >= 1.2 * i.forecast_offered:
        return "burst"
    if on_shift > i.planned_agents and i.planned_agents <= required:
        return "break"
    return "variance"


def day_factors(result: Evaluation, seed: int) -> dict[tuple[str, int], float]:
    """The simulator's hidden busyness factor G per (region, local day), as the twin drew it."""
    config = replace(SimConfig(), regions=result.regions)
    regions = select_regions(result.regions)
    model = ArrivalModel(config, regions, seed)
    out = {}
    for t in range(result.start_ms, result.end_ms, HOUR_MS):
        offsets = model.offsets_s(t)
        for index, region in enumerate(regions):
            local_day = (t // 1000 + offsets[index]) // 86_400
            out[(region.code, local_day)] = model.day_factor(index, local_day)
    return out


def analyse(result: Evaluation, plan_shifts: object) -> dict[str, object]:
    shifts = on_shift_by_interval(plan_shifts)
    regions = select_regions(result.regions)
    model = ArrivalModel(replace(SimConfig(), regions=result.regions), regions, result.seed)
    offset = {r.code: model.offsets_s(result.start_ms)[k] for k, r in enumerate(regions)}
    factors = day_factors(result, result.seed)
    misses: list[dict[str, object]] = []
    causes: Counter[str] = Counter()
    by_day: dict[tuple[str, str, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for i in result.intervals:
        c = i.counts
        local_day = (i.interval_start_ms // 1000 + offset[i.region]) // 86_400
        day = by_day[(i.region, i.channel, local_day)]
        for name in ("answered", "answered_within_target", "abandoned", "offered", "short_abandoned"):
            day[name] += getattr(c, name)
        day["intervals"] += 1
        day["below"] += int(i.sl_mark.met is False)
        if c.answered + c.abandoned < MIN_CONTACTS or i.sl_mark.met is not False:
            continue
        why = cause(i, shifts.get((i.region, i.channel, i.interval_start_ms), 0))
        causes[why] += 1
        misses.append({
            "region": i.region, "channel": i.channel,
            "interval_start": datetime.fromtimestamp(i.interval_start_ms / 1000, UTC).isoformat(),
            "service_level": c.service_level, "offered": c.offered, "forecast_offered": i.forecast_offered,
            "planned": i.planned_agents, "required": i.required_agents, "cause": why,
            "busyness": factors.get((i.region, local_day)),
        })  # fmt: skip
    days, channel_days = [], []
    for (region, channel, local_day), d in sorted(by_day.items()):
        base = d["answered"] + d["abandoned"]
        offered = d["offered"] - d["short_abandoned"]
        row = {
            "region": region, "channel": channel,
            "local_day": datetime.fromtimestamp(local_day * 86_400, UTC).date().isoformat(),
            "busyness": factors.get((region, local_day)), "offered": d["offered"],
            "sl": d["answered_within_target"] / base if base else None,
            "abandonment": d["abandoned"] / offered if offered > 0 else None,
            "intervals_below": d["below"], "intervals": d["intervals"],
        }  # fmt: skip
        channel_days.append(row)
        if channel == "VOICE":
            days.append({
                "region": region, "local_day": row["local_day"], "busyness": row["busyness"],
                "voice_offered": row["offered"], "voice_sl": row["sl"],
                "voice_abandonment": row["abandonment"],
            })  # fmt: skip
    return {"misses": misses, "causes": dict(causes), "voice_days": days, "channel_days": channel_days}


def scheduler_plan(path: str, regions: list[str]) -> PlanFile:
    """The scheduler's plan file restricted to ``regions`` (shifts and intervals)."""
    plan = read_plan(__import__("pathlib").Path(path))
    keep = set(regions)
    shifts = tuple(s for s in plan.shifts if s.region in keep)
    intervals = tuple(i for i in plan.intervals if i.region in keep)
    return PlanFile(plan.plan_id, shifts, intervals)


def own_staffing(result: Evaluation) -> dict[tuple[str, str], Counts]:
    """The same traffic (same seed, regions and span) with the simulator's own 15-minute Erlang
    staffing: agents come and go every 15 minutes, no shifts, no breaks."""
    totals: dict[tuple[str, str], Counts] = {}

    def take(minutes: list[MinuteKpi]) -> None:
        for m in minutes:
            totals.setdefault((m.region, m.channel), Counts()).add(m)

    start = datetime.fromtimestamp(result.start_ms / 1000, UTC)
    config = replace(SimConfig(), regions=result.regions)
    duration_s = (result.end_ms - result.start_ms) / 1000
    sim = Simulation(config, seed=result.seed, start=start, duration_s=duration_s, on_truth=take)
    for _ in sim.batches():
        pass
    return totals


def busy_day_tally(analysis: dict[str, object], result: Evaluation) -> dict[str, object]:
    """Misses on busy days (G >= 1.1) against the share of such days."""
    misses = analysis["misses"]
    days = analysis["voice_days"]
    busy = [m for m in misses if (m["busyness"] or 0) >= 1.1]  # type: ignore[attr-defined]
    busy_days = [d for d in days if (d["busyness"] or 0) >= 1.1]  # type: ignore[attr-defined]
    return {"misses_on_busy_days": len(busy), "misses": len(misses),  # type: ignore[arg-type]
            "busy_days": len(busy_days), "days": len(days)}  # type: ignore[arg-type]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regions", default="RU-MOW,RU-SPE,RU-PRI,RU-KGD")
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--plan", default=None, help="the scheduler's plan file (ccpulse plan schedule --out)"
    )
    parser.add_argument(
        "--shrinkage", type=float, default=None,
        help="shrinkage played out on the plan's agents (default: the planner's 0.20 with --plan, "
        "which scheduled for it; none for the Erlang baseline, which did not)",
    )  # fmt: skip
    parser.add_argument("--absence", type=float, default=0.05, help="of it, agents absent for a shift")
    parser.add_argument("--adherent", action="store_true", help="every agent present and adherent")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    total = args.shrinkage if args.shrinkage is not None else (DEFAULT_SHRINKAGE if args.plan else 0.0)
    people = None if args.adherent or total == 0 else TwinShrinkage.of_total(total, min(args.absence, total))
    regions = [r.strip() for r in args.regions.split(",") if r.strip()]
    began = time.perf_counter()
    if args.plan:
        plan = scheduler_plan(args.plan, regions)
    else:
        plan = erlang_plan(regions, DEFAULT_START, days=args.days)
    planned_s = time.perf_counter() - began
    result = evaluate(plan, seed=args.seed, days=args.days if args.plan else None, shrinkage=people)
    twin_s = time.perf_counter() - began - planned_s
    analysis = analyse(result, plan.shifts)
    analysis["busy_days"] = busy_day_tally(analysis, result)
    own = own_staffing(result)
    analysis["own_staffing"] = [
        {"region": r, "channel": c, "service_level": k.service_level, "asa_s": k.asa_s,
         "abandonment": k.abandonment}
        for (r, c), k in sorted(own.items())
    ]  # fmt: skip
    start = datetime.fromtimestamp(result.start_ms / 1000, UTC)
    summary = {
        "plan_id": plan.plan_id, "regions": regions, "days": args.days, "seed": args.seed,
        "shrinkage": None if people is None else {"absence": people.absence, "offline": people.offline},
        "start": start.isoformat(), "loadavg": open("/proc/loadavg").read().split()[:3],
        "intervals": [
            {"region": i.region, "channel": i.channel, "start_ms": i.interval_start_ms,
             "sl": i.counts.service_level, "offered": i.counts.offered, "planned": i.planned_agents,
             "required": i.required_agents, "forecast": i.forecast_offered}
            for i in result.intervals
        ], "shift_assignments": len(plan.shifts),
        "contacts": result.contacts, "plan_s": round(planned_s, 2), "twin_s": round(twin_s, 2),
        "channels": [d.as_dict() for d in result.days], **analysis,
    }  # fmt: skip
    if args.json:
        print(json.dumps(summary))
        return
    print(f"plan {plan.plan_id}: {len(plan.shifts)} shift assignments, {args.days:g} days from "
          f"{start:%Y-%m-%d %H:%M} UTC, seed {args.seed}; {result.contacts} contacts; "
          f"plan {planned_s:.1f} s, twin {twin_s:.1f} s")  # fmt: skip
    print(f"{'region':8} {'channel':10} {'offered':>8} {'SL':>7} {'':6} {'ASA s':>7} {'':6} {'aband':>6} "
          f"{'<target':>9} {'plan ah':>8} {'req ah':>8}")  # fmt: skip
    for d in result.days:
        c = d.counts
        print(f"{d.region:8} {d.channel:10} {c.offered:8d} {100 * (c.service_level or 0):6.1f}% "
              f"{d.service_level.verdict:6} {c.asa_s or 0:7.1f} {d.asa.verdict:6} "
              f"{100 * (c.abandonment or 0):5.1f}% {d.intervals_below_target:4d}/{d.intervals:<4d} "
              f"{d.planned_agent_hours:8.0f} {d.required_agent_hours or 0:8.0f}")  # fmt: skip
    print("\nsame traffic, the simulator's own 15-minute staffing (no shifts, no breaks):")
    for row in analysis["own_staffing"]:  # type: ignore[attr-defined]
        print(f"  {row['region']:8} {row['channel']:10} SL {100 * (row['service_level'] or 0):5.1f}% "
              f"ASA {row['asa_s'] or 0:6.1f} s abandon {100 * (row['abandonment'] or 0):4.1f}%")  # fmt: skip
    print(f"busy days (G >= 1.1): {analysis['busy_days']}")
    print("\nvoice per region x local day (G = the day's hidden busyness factor):")
    for row in analysis["voice_days"]:  # type: ignore[attr-defined]
        sl = row["voice_sl"]
        print(f"  {row['region']:8} {row['local_day']} G={row['busyness']:.2f} "
              f"offered {row['voice_offered']:5d} "
              f"SL {'-' if sl is None else f'{100 * sl:5.1f}%'} "
              f"abandon {100 * (row['voice_abandonment'] or 0):4.1f}%")  # fmt: skip
    print("\nSL per region x channel x local day vs the 80 % target (intervals below / with contacts):")
    for row in analysis["channel_days"]:  # type: ignore[attr-defined]
        sl = row["sl"]
        mark = "" if sl is None else ("met" if sl >= 0.8 else "MISSED")
        print(f"  {row['region']:8} {row['channel']:10} {row['local_day']} G={row['busyness'] or 0:.2f} "
              f"offered {row['offered']:5d} SL {'-' if sl is None else f'{100 * sl:5.1f}%'} {mark:6} "
              f"abandon {100 * (row['abandonment'] or 0):4.1f}% "
              f"below {row['intervals_below']}/{row['intervals']}")  # fmt: skip
    print(f"\nintervals below 80 % with >= {MIN_CONTACTS} contacts, by likeliest cause: {analysis['causes']}")
    for miss in analysis["misses"][:15]:  # type: ignore[index]
        print(f"  {miss['region']} {miss['channel']:9} {miss['interval_start']} "
              f"SL {100 * miss['service_level']:5.1f}% offered {miss['offered']} "
              f"(forecast {miss['forecast_offered']:.1f}) planned {miss['planned']} "
              f"required {miss['required']:.0f} G={miss['busyness']:.2f} -> {miss['cause']}")  # fmt: skip


if __name__ == "__main__":
    main()
