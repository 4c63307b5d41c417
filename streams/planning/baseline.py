"""A baseline plan: the simulator's own Erlang staffing turned into shifts with breaks.

The simulator sizes each 15-minute interval by Erlang A from its forecast
(streams/simulator/staffing.py ``StaffingPlan.agents``). Real agents work shifts, so this
covers that requirement greedily with 8-hour shifts, each with a 15-minute break and a
30-minute lunch: walking the intervals in time order, whenever the agents on the floor
fall short of the requirement, enough shifts start there to close the gap. A cohort's
breaks are staggered over three variants (break after 1:45, 2:00 or 2:15; lunch after
3:45, 4:00 or 4:15) so that a whole cohort never leaves the floor at once. Shifts run their
full length past the horizon's end (they serve the contacts still waiting), but none
starts after it.

It is the plan the twin is proven on before the real scheduler (``ccpulse plan
schedule``) exists, and a baseline to beat: "the Erlang plan with breaks as shifts". It
over-covers (shifts are long and start only where the requirement rises), which is the
point of a real scheduler.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from streams.domain.shift_plan import INTERVAL_MS, Break, PlanInterval, ShiftAssignment, planned_agents
from streams.planning.plan_file import PlanFile
from streams.simulator.arrivals import HOUR_MS, ArrivalModel
from streams.simulator.config import SimConfig
from streams.simulator.run import select_regions
from streams.simulator.staffing import StaffingPlan

SHIFT_INTERVALS = 32  # 8 h
# (break start, lunch start) in intervals after the shift start, one pair per variant
BREAK_VARIANTS = ((7, 15), (8, 16), (9, 17))
BREAK_INTERVALS, LUNCH_INTERVALS = 1, 2  # 15 min, 30 min


def _breaks(start_ms: int, variant: int) -> tuple[Break, ...]:
    brk, lunch = BREAK_VARIANTS[variant]
    return (
        Break(start_ms + brk * INTERVAL_MS, start_ms + (brk + BREAK_INTERVALS) * INTERVAL_MS, "BREAK"),
        Break(start_ms + lunch * INTERVAL_MS, start_ms + (lunch + LUNCH_INTERVALS) * INTERVAL_MS, "LUNCH"),
    )


def _on_floor_offsets(variant: int) -> list[bool]:
    brk, lunch = BREAK_VARIANTS[variant]
    away = set(range(brk, brk + BREAK_INTERVALS)) | set(range(lunch, lunch + LUNCH_INTERVALS))
    return [i not in away for i in range(SHIFT_INTERVALS)]


def cover(required: Sequence[int]) -> list[tuple[int, int, int]]:
    """Greedy shifts covering ``required`` agents per interval: (start interval, variant, agents)."""
    floor = [0] * (len(required) + SHIFT_INTERVALS)
    offsets = [_on_floor_offsets(v) for v in range(len(BREAK_VARIANTS))]
    shifts: list[tuple[int, int, int]] = []
    turn = 0
    for i, need in enumerate(required):
        gap = need - floor[i]
        if gap <= 0:
            continue
        counts = [0] * len(BREAK_VARIANTS)
        for _ in range(gap):  # round-robin over the variants, continuing across starts
            counts[turn % len(BREAK_VARIANTS)] += 1
            turn += 1
        for variant, agents in enumerate(counts):
            if not agents:
                continue
            shifts.append((i, variant, agents))
            for k, present in enumerate(offsets[variant]):
                floor[i + k] += agents * present
        if floor[i] < need:  # cannot happen: a new shift is on the floor in its first interval
            msg = f"interval {i}: {floor[i]} on the floor after covering {need}"
            raise AssertionError(msg)
    return shifts


def erlang_plan(
    regions: Sequence[str] | None,
    start: datetime,
    days: float = 1.0,
    config: SimConfig | None = None,
    plan_id: str | None = None,
) -> PlanFile:
    """The simulator's own requirement per region x channel x interval over ``days`` from
    ``start`` (a whole UTC hour), covered by greedy 8-hour shifts with a break and lunch."""
    config = replace(config or SimConfig(), regions=tuple(regions) if regions else None, shifts=None)
    start_ms = int(start.astimezone(UTC).timestamp() * 1000)
    if start_ms % HOUR_MS:
        msg = f"start {start.isoformat()} is not on a whole UTC hour"
        raise ValueError(msg)
    n = round(days * 86_400_000 / INTERVAL_MS)
    chosen = select_regions(config.regions)
    model = ArrivalModel(config, chosen, seed=0)  # the forecast has no random part
    staffing = StaffingPlan(model)
    shifts: list[ShiftAssignment] = []
    intervals: list[PlanInterval] = []
    plan_id = plan_id or f"erlang-baseline-{start.astimezone(UTC):%Y%m%dT%H%M}-{n}"
    for index, region in enumerate(chosen):
        for channel in model.channels:
            params = config.channels[channel]
            times = [start_ms + i * INTERVAL_MS for i in range(n)]
            offsets = [model.offsets_s(t - t % HOUR_MS)[index] for t in times]
            required = [
                staffing.agents(index, params.queue, t, o) for t, o in zip(times, offsets, strict=True)
            ]
            mine = [
                ShiftAssignment(
                    region.code,
                    channel.value,
                    f"8h-v{variant}",
                    start_ms + i * INTERVAL_MS,
                    start_ms + (i + SHIFT_INTERVALS) * INTERVAL_MS,
                    agents,
                    _breaks(start_ms + i * INTERVAL_MS, variant),
                )  # fmt: skip
                for i, variant, agents in cover(required)
            ]
            shifts.extend(mine)
            for t, o, need in zip(times, offsets, required, strict=True):
                rate = staffing.forecast_rate(index, params.queue, t, o)
                intervals.append(
                    PlanInterval(
                        plan_id,
                        region.code,
                        channel.value,
                        t,
                        rate * INTERVAL_MS / 1000,
                        params.handle.mean_s,
                        float(need),
                        planned_agents(mine, region.code, channel.value, t),
                    )  # fmt: skip
                )
    return PlanFile(plan_id, tuple(shifts), tuple(intervals))
