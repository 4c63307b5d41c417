"""The week's schedule budget left over after every region is planned, spent on the channels
furthest above their bound.

Each channel's integer steps (rounding, dive, local search) stop by their own rules, well
inside the budget on a quiet machine (2026-12-01: 232-279 s of 420 s), and their result
depends on the path: the LP vertex the dive follows, whether it prices columns in, the
ruin-and-recreate's random slots. On 16 random channels the same solve with the dive
pricing 50 columns a step gave 4.82 % instead of 5.11 %, and the better of the two per
channel 4.54 % (docs/planning.md). So the time left goes to solving channels again with
other settings (``VARIANTS``, in turn), the largest excess over the bound (paid hours - bound)
first, each keeping the cheaper of its schedules: a channel never gets worse, and the bound
kept is the better of the two valid ones.

Only channels solved alone are polished (without a headcount cap or part-time share: with
them a region's channels are one problem, ``ScheduleResult.by_channel`` is empty).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from streams.planning.colgen import ColumnPool
from streams.planning.schedule import CoverageMatrix, Limits, ScheduleResult, solve_region

# (dive columns priced in a step, ruin-and-recreate seed): the first solve is (0, 0)
VARIANTS: tuple[tuple[int, int], ...] = ((50, 1), (0, 2), (200, 3), (50, 4))
SLICE_S = 1.5  # at least this many seconds a solve; stop when less is left


def excess(result: ScheduleResult, channel: str) -> float:
    stats = result.by_channel[channel]
    return float(stats["objective"] - stats["bound"])


def with_channel(result: ScheduleResult, part: ScheduleResult) -> bool:
    """Put ``part`` (one channel solved alone) into ``result`` in place when it is cheaper; the
    channel's bound (and whether its column generation converged) becomes the better of the
    two either way. True when the schedule changed."""
    (channel,) = part.by_channel
    old, new = result.by_channel[channel], part.by_channel[channel]
    better = new["objective"] < old["objective"] - 1e-6
    kept = dict(new if better else old)
    kept["bound"] = max(old["bound"], new["bound"])
    kept["converged"] = max(old.get("converged", 0.0), new.get("converged", 0.0))
    if better:
        result.agents = {key: a for key, a in result.agents.items() if key[0] != channel}
        result.agents.update(part.agents)
        result.under[channel] = part.under[channel]
    result.lp_bound += kept["bound"] - old["bound"]
    result.paid_hours += kept["paid_hours"] - old["paid_hours"]
    result.objective += kept["objective"] - old["objective"]
    for key, value in kept.items():  # a step that did not run is NaN: its sum is left alone
        if key in result.stats and key in old and np.isfinite(value) and np.isfinite(old[key]):
            result.stats[key] += value - old[key]
    result.by_channel[channel] = kept
    if result.objective > 0:
        result.gap = max((result.objective - result.lp_bound) / result.objective, 0.0)
    return better


def polish(
    results: dict[str, ScheduleResult],
    demand: dict[str, dict[str, np.ndarray]],
    cover: CoverageMatrix,
    limits: Limits,
    deadline: float,
    pool: ColumnPool | None = None,
) -> int:
    """Solve channels of ``results`` again until ``time.perf_counter()`` reaches ``deadline``
    (each solve is given an equal share of what is left, at least ``SLICE_S``); ``results`` are
    updated in place, each region's ``stats`` counting its ``polish_solves``,
    ``polish_improved`` and ``polish_seconds``. Returns the number of solves."""
    solves = 0
    for dive_columns, seed in VARIANTS:
        channels = [(r, k) for r, res in results.items() for k in res.by_channel if excess(res, k) > 0.5]
        channels.sort(key=lambda rk: -excess(results[rk[0]], rk[1]))
        for n, (region, channel) in enumerate(channels):
            left = deadline - time.perf_counter()
            if left < SLICE_S:
                return solves
            seconds = max(left / (len(channels) - n), SLICE_S)
            variant = replace(
                limits,
                pricing_budget_s=0.5 * seconds,
                dive_s=0.35 * seconds,
                dive_columns=dive_columns,
                local_search_s=0.10 * seconds,
                mip_time_limit_s=0.05 * seconds,
                seed=seed,
            )
            t0 = time.perf_counter()
            part = solve_region(region, {channel: demand[region][channel]}, cover, variant, pool)
            improved = with_channel(results[region], part)
            stats = results[region].stats
            for key, add in (("polish_solves", 1.0), ("polish_improved", float(improved))):
                stats[key] = stats.get(key, 0.0) + add
            stats["polish_seconds"] = stats.get("polish_seconds", 0.0) + time.perf_counter() - t0
            solves += 1
    return solves
