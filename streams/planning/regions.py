"""The regions' schedules of one week, one after another or in processes side by side.

Without a headcount cap linking them, regions are independent problems, so ``processes`` > 1
splits them over forked processes, each planning its share of the regions in turn with the
whole wall-clock budget, its own column pool (the first region of each starts cold), and
results sent back over a queue. On a 2-core machine two processes give each channel about
twice the CPU time of one within the same budget (docs/planning.md has what it buys).
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from streams.planning.colgen import ColumnPool
from streams.planning.polish import polish
from streams.planning.schedule import CoverageMatrix, Limits, ScheduleResult, solve_region

Demand = dict[str, np.ndarray]  # channel -> agents to schedule per local week slot
Progress = Callable[[str], None] | None  # called with each region planned


@dataclass(frozen=True)
class Week:
    """What every region's schedule of one week needs."""

    demand: dict[str, Demand]  # region -> its channels' demand
    share: dict[str, float]  # region -> its share of the budget
    cover: CoverageMatrix
    limits: Limits
    caps: dict[str, int] | None = None  # region -> headcount cap
    budget_s: float | None = None  # wall-clock seconds for all of it; None: ``limits``' budgets


def schedule_in_turn(order: list[str], week: Week, progress: Progress = None) -> dict[str, ScheduleResult]:
    """Plan ``order``'s regions one after another. With ``budget_s``: what is left of it is
    shared out by ``share`` over the regions still to plan (column generation 75 %, diving
    20 %, local search 3 %, MIP 2 %; the first region, with an empty pool, 3x the column
    generation); unused time rolls forward; a region that overruns shrinks the ones after; what
    is left at the end solves the channels furthest above their bound again
    (streams/planning/polish.py)."""
    share, limits, budget_s, caps = week.share, week.limits, week.budget_s, week.caps
    pool = ColumnPool()
    results: dict[str, ScheduleResult] = {}
    t_schedule = time.perf_counter()
    for n, region in enumerate(order):
        region_limits = limits
        if budget_s is not None:
            left = max(budget_s - (time.perf_counter() - t_schedule), 0.0)
            seconds = left * share[region] / sum(share[r] for r in order[n:])
            region_limits = replace(
                limits,
                pricing_budget_s=0.75 * seconds * (3.0 if n == 0 else 1.0),
                dive_s=0.20 * seconds,
                local_search_s=0.03 * seconds,
                mip_time_limit_s=0.02 * seconds,
            )
        if caps and region in caps:
            region_limits = replace(region_limits, headcount_cap=caps[region])
        results[region] = solve_region(region, week.demand[region], week.cover, region_limits, pool)
        if progress:
            progress(region)
    if budget_s is not None:  # what is left, less a second for the plan file, polishes
        polish(results, week.demand, week.cover, limits, t_schedule + budget_s - 1.0, pool)
    return results


def balanced(order: list[str], share: dict[str, float], parts: int) -> list[list[str]]:
    """``order``'s regions in ``parts`` lists of about equal total share (each region to the
    lightest list so far, largest first), each list keeping ``order``'s order."""
    bins: list[list[str]] = [[] for _ in range(parts)]
    loads = [0.0] * parts
    for region in sorted(order, key=lambda r: -share[r]):
        i = loads.index(min(loads))
        bins[i].append(region)
        loads[i] += share[region]
    rank = {r: k for k, r in enumerate(order)}
    return [sorted(b, key=rank.__getitem__) for b in bins if b]


def schedule_side_by_side(
    order: list[str], week: Week, processes: int, progress: Progress = None
) -> dict[str, ScheduleResult]:
    """``schedule_in_turn`` over ``processes`` forked processes (``balanced`` lists of regions).
    A child that fails or dies fails the run with its traceback or exit code."""
    parts = balanced(order, week.share, processes)
    if len(parts) < 2:
        return schedule_in_turn(order, week, progress)
    context = multiprocessing.get_context("fork")  # the children inherit the coverage matrix
    messages = context.Queue()

    def child(i: int, regions: list[str]) -> None:
        try:
            done = schedule_in_turn(regions, week, lambda r: messages.put(("region", r)))
            messages.put(("done", i, done))
        except BaseException:  # noqa: BLE001 - reported to the parent, which raises
            messages.put(("error", i, traceback.format_exc()))

    children = [context.Process(target=child, args=(i, p), daemon=True) for i, p in enumerate(parts)]
    for c in children:
        c.start()
    results: dict[str, ScheduleResult] = {}
    finished: set[int] = set()
    try:
        while len(finished) < len(children):
            try:
                message = messages.get(timeout=1.0)
            except queue.Empty:
                dead = [
                    i for i, c in enumerate(children) if i not in finished and c.exitcode not in (None, 0)
                ]
                if dead:
                    msg = f"scheduling process {dead[0]} died (exit code {children[dead[0]].exitcode})"
                    raise RuntimeError(msg) from None
                continue
            if message[0] == "region":
                if progress:
                    progress(message[1])
            elif message[0] == "done":
                finished.add(message[1])
                results.update(message[2])
            else:
                msg = f"scheduling process {message[1]} failed:\n{message[2]}"
                raise RuntimeError(msg)
    finally:
        for c in children:
            c.join(timeout=5)
            if c.is_alive():
                c.kill()
                c.join()
    return results
