"""One planning run: history -> forecast -> requirements -> schedule -> plan file.

Weeks are local: the plan week of a region starts at local midnight of the chosen
Monday in its own time zone, so the same catalogue slots (0 = local Monday 00:00) mean
the same local times everywhere. The forecast horizon is UTC and spans every region's
week (from the easternmost region's Monday to the westernmost's Sunday night).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np

from streams.domain.regions import DAY_MS, utc_offset_ms
from streams.domain.shift_plan import INTERVAL_MS, PlanInterval, ShiftAssignment
from streams.planning.catalogue import SLOTS_PER_WEEK, Catalogue
from streams.planning.forecast import Forecast
from streams.planning.plan_file import PlanFile
from streams.planning.regions import Week, schedule_in_turn, schedule_side_by_side
from streams.planning.requirements import RequirementModel
from streams.planning.schedule import CoverageMatrix, Limits, ScheduleResult, planned_on_floor

CHANNELS = ("VOICE", "CHAT", "MESSENGER", "EMAIL")


def week_starts(monday: date, regions: Sequence[str]) -> dict[str, int]:
    """UTC epoch ms of local midnight of ``monday`` in each region."""
    midnight = int(datetime(monday.year, monday.month, monday.day, tzinfo=UTC).timestamp() * 1000)
    return {r: midnight - utc_offset_ms(r) for r in regions}


def horizon(starts: dict[str, int]) -> tuple[int, int]:
    """(first UTC slot start ms, slots) covering every region's local week."""
    first = min(starts.values())
    last = max(starts.values()) + 7 * DAY_MS
    return first, (last - first) // INTERVAL_MS


@dataclass
class RegionNeed:
    offered: dict[str, np.ndarray]  # per local week slot
    aht_s: dict[str, np.ndarray]
    on_floor: dict[str, np.ndarray]  # required on the floor (Erlang A / C)
    scheduled: dict[str, np.ndarray]  # to schedule (after shrinkage)


def region_need(fc: Forecast, model: RequirementModel, region: str, week_start_ms: int) -> RegionNeed:
    first = (week_start_ms - fc.start_ms) // INTERVAL_MS
    need = RegionNeed({}, {}, {}, {})
    for channel in CHANNELS:
        key = (region, channel)
        offered = fc.offered.get(key, np.zeros(fc.slots))[first : first + SLOTS_PER_WEEK]
        aht = fc.aht_s.get(key, np.zeros(fc.slots))[first : first + SLOTS_PER_WEEK]
        floor = np.asarray([model.on_floor(channel, o, a) for o, a in zip(offered, aht, strict=True)])
        need.offered[channel], need.aht_s[channel] = offered, aht
        need.on_floor[channel] = floor
        need.scheduled[channel] = np.asarray([model.scheduled(f) for f in floor])
    return need


@dataclass
class WeekPlan:
    plan: PlanFile
    results: dict[str, ScheduleResult]
    needs: dict[str, RegionNeed]
    seconds: float
    stats: dict[str, float] = field(default_factory=dict)


def plan_week(
    plan_id: str,
    fc: Forecast,
    model: RequirementModel,
    catalogue: Catalogue,
    starts: dict[str, int],
    limits: Limits,
    caps: dict[str, int] | None = None,
    progress: Callable[[str], None] | None = None,
    budget_s: float | None = None,
    processes: int = 1,
) -> WeekPlan:
    """``budget_s``: seconds for the whole run's schedules (from the first region on), shared
    out by the regions' demand, each region's from what is left (column generation 75 %,
    diving 20 %, local search 3 %, MIP 2 %: the MIP mostly confirms the dive); None:
    ``limits``' budgets for every region. Columns are carried from region to region
    (``ColumnPool``). ``processes`` > 1: the regions split over that many processes, each
    with the whole budget and a pool of its own (streams/planning/regions.py)."""
    t0 = time.perf_counter()
    cover = CoverageMatrix(catalogue)
    shifts: list[ShiftAssignment] = []
    intervals: list[PlanInterval] = []
    results, needs = {}, {}
    all_needs = {region: region_need(fc, model, region, ws) for region, ws in starts.items()}
    weight = {r: sum(float(v.sum()) for v in n.scheduled.values()) for r, n in all_needs.items()}
    total_weight = sum(weight.values()) or 1.0
    share = {r: 0.5 / len(starts) + 0.5 * weight[r] / total_weight for r in starts}
    # the largest regions first: they get the longest budgets, converge from a cold start,
    # and warm the column pool for the rest
    order = sorted(starts, key=lambda r: -weight[r])
    week = Week({r: n.scheduled for r, n in all_needs.items()}, share, cover, limits, caps, budget_s)
    if processes > 1:  # regions are independent (a headcount cap is a region's own)
        results = schedule_side_by_side(order, week, processes, progress)
    else:
        results = schedule_in_turn(order, week, progress)
    results = {r: results[r] for r in starts}  # back in the caller's order
    for region, week_start in starts.items():
        result, need = results[region], all_needs[region]
        needs[region] = need
        for (channel, j), agents in sorted(result.agents.items()):
            shifts.extend(catalogue.to_assignments(j, agents, region, channel, week_start))
        for channel in CHANNELS:
            # planned on the floor counts the scheduled agents less the shrinkage
            floor = planned_on_floor(result, cover, channel) * (1.0 - model.shrinkage)
            for i in range(SLOTS_PER_WEEK):
                intervals.append(
                    PlanInterval(
                        plan_id,
                        region,
                        channel,
                        week_start + i * INTERVAL_MS,
                        float(need.offered[channel][i]),
                        float(need.aht_s[channel][i]),
                        float(need.on_floor[channel][i]),
                        int(np.floor(floor[i] + 1e-9)),
                    )
                )
    plan = PlanFile(plan_id, tuple(shifts), tuple(intervals))
    return WeekPlan(plan, results, needs, time.perf_counter() - t0)
