"""A week's schedule for one region: agents per catalogue variant, per channel.

The integer program (per region; the channels are blocks linked by the region's rows):

    min  sum_kj paid_hours_j x_kj + penalty * sum_kt u_kt
    s.t. sum_j cover_tj x_kj + u_kt >= demand_kt   for every channel k, slot t with demand
         sum_kj (part_time_j - share) x_kj >= 0     (minimum part-time share of agents)
         sum_kj x_kj <= headcount cap              (when a cap is given)
         0 <= x_kj <= max_per_variant, integer;  u_kt >= 0

``u`` is under-coverage: with a big penalty it is zero whenever the limits allow full
coverage; when a cap makes that impossible the model minimises weighted
under-coverage instead and ``ScheduleResult.under`` says where it falls.

Without a cap or a part-time share the channels are independent and each is solved alone.
58,000 variants are not handed to a MIP solver whole: column generation on the LP
relaxation (streams/planning/colgen.py: HiGHS primal simplex without presolve,
warm-started as columns are added, Wentges-smoothed pricing of every variant each round
with one sparse product, a column pool carried from region to region). When no reduced
cost is negative the master's LP is the LP over the *whole* catalogue; before that the
bound is the best of Farley's and the Lagrangian one over the duals priced. Costs are whole hours,
so the bound is rounded up. The integer solution: a rounding of the LP (rounding.py), a
dive (dive.py) and a local search over the whole catalogue (improve.py),
then HiGHS branch and cut over the promising columns started from the best of them,
and the gap is reported against the catalogue-wide bound, never the MIP's own bound
over the restricted columns (price-and-branch: the gap is honest, possibly larger than a
full branch-and-price would give).

Solver: HiGHS (highspy), chosen over OR-Tools CP-SAT by measurement (docs/planning.md):
it returns LP duals for pricing, warm-starts, and reports a MIP dual bound and gap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import highspy
import numpy as np

from streams.planning.catalogue import SLOTS_PER_WEEK
from streams.planning.colgen import ColumnPool, generate
from streams.planning.dive import dive
from streams.planning.incumbent import keep_promising, local_search, rounded
from streams.planning.master import CoverageMatrix as CoverageMatrix  # re-exported: pipeline, tests
from streams.planning.master import Limits as Limits  # re-exported: the CLI, bench, tests
from streams.planning.master import Master


@dataclass
class ScheduleResult:
    region: str
    agents: dict[tuple[str, int], int]  # (channel, variant index) -> agents
    paid_hours: float
    lp_bound: float  # LP relaxation over the whole catalogue (objective incl. penalty)
    objective: float  # integer solution's objective (incl. penalty)
    gap: float  # (objective - lp_bound) / objective
    under: dict[str, np.ndarray]  # channel -> agent shortfall per week slot
    columns: int
    rounds: int
    lp_seconds: float
    mip_seconds: float
    stats: dict[str, float] = field(default_factory=dict)
    by_channel: dict[str, dict[str, float]] = field(default_factory=dict)  # a channel solved alone

    @property
    def under_slots(self) -> int:
        return int(sum(int((u > 0).sum()) for u in self.under.values()))

    @property
    def headcount(self) -> int:
        return sum(self.agents.values())


def solve_region(
    region: str,
    demand: dict[str, np.ndarray],
    cover: CoverageMatrix,
    limits: Limits | None = None,
    pool: ColumnPool | None = None,
) -> ScheduleResult:
    """Schedule one region's week; ``demand[channel]`` is agents to schedule per local slot.

    Without a headcount cap or a part-time share nothing links the channels (agents are
    single-skilled), so each channel is its own, smaller, problem; the region's figures are
    the sums. The time budgets are the region's, shared out by the channels' demand; what a
    channel leaves unused goes to the channels after it. ``pool``: columns carried from
    region to region (streams/planning/colgen.py), a warm start only."""
    limits = limits or Limits()
    linked = limits.headcount_cap is not None or limits.min_part_time_share > 0.0
    if linked:
        return _solve_block(region, demand, cover, limits, pool)
    total = sum(float(d.sum()) for d in demand.values()) or 1.0
    weights = [max(float(d.sum()) / total, 0.1) for d in demand.values()]
    budget = limits.pricing_budget_s + limits.mip_time_limit_s + limits.dive_s + limits.local_search_s
    t0 = time.perf_counter()
    parts = []
    for i, (k, d) in enumerate(demand.items()):
        # the channel's share, plus what the channels before it left unused (an overrun is
        # not taken from it: the run's budget, streams/planning/pipeline.py, absorbs that)
        unused = max(budget * sum(weights[:i]) / sum(weights) - (time.perf_counter() - t0), 0.0)
        share = (weights[i] / sum(weights) + unused / budget) if budget > 0 else 0.0
        block = replace(
            limits,
            pricing_budget_s=limits.pricing_budget_s * share,
            mip_time_limit_s=limits.mip_time_limit_s * share,
            dive_s=limits.dive_s * share,
            local_search_s=limits.local_search_s * share,
        )
        parts.append(_solve_block(region, {k: d}, cover, block, pool))
    first = parts[0]
    for p in parts[1:]:
        first.agents.update(p.agents)
        first.under.update(p.under)
        first.paid_hours += p.paid_hours
        first.lp_bound += p.lp_bound
        first.objective += p.objective
        first.columns += p.columns
        first.rounds = max(first.rounds, p.rounds)
        first.lp_seconds += p.lp_seconds
        first.mip_seconds += p.mip_seconds
        for key, v in p.stats.items():
            first.stats[key] = first.stats.get(key, 0.0) + v
        first.by_channel.update(p.by_channel)
    first.gap = max((first.objective - first.lp_bound) / first.objective, 0.0) if first.objective > 0 else 0.0
    return first


def _solve_block(
    region: str,
    demand: dict[str, np.ndarray],
    cover: CoverageMatrix,
    limits: Limits,
    pool: ColumnPool | None = None,
) -> ScheduleResult:
    t0 = time.perf_counter()
    master = Master(demand, limits, cover)
    h = master.h
    linked = limits.headcount_cap is not None or limits.min_part_time_share > 0.0 or len(master.channels) > 1
    gen = generate(master, limits.pricing_budget_s, pool)
    # column generation's unused time goes to the dive
    limits = replace(limits, dive_s=limits.dive_s + max(limits.pricing_budget_s - gen.seconds, 0.0))
    lp_bound, converged, rounds = gen.bound, gen.converged, gen.rounds
    cat_cost = cover.catalogue.paid_hours
    if np.all(cat_cost == np.round(cat_cost)) and float(limits.under_penalty).is_integer():
        # every cost is a whole number and so is every integer solution's objective
        lp_bound = float(np.ceil(lp_bound - 1e-6))
    lp_value = h.getInfo().objective_function_value
    t1 = time.perf_counter()
    n_slack = master.n_cover
    solution = h.getSolution()
    lp_values = np.asarray(solution.col_value)
    reduced = np.asarray(solution.col_dual)
    incumbent = rounded(master, lp_values)
    heuristic = float(np.asarray(master.cost) @ incumbent)
    dive_value = float("nan")
    if limits.dive_s > 0 and not linked:
        dived = dive(master, limits.dive_s, limits.dive_columns, keep=limits.dive_keep)
        dive_value = float(np.asarray(master.cost) @ dived)
        grown = dived.size - incumbent.size  # columns the dive priced in
        incumbent, lp_values = (np.concatenate([v, np.zeros(grown)]) for v in (incumbent, lp_values))
        reduced = np.concatenate([reduced, np.full(grown, np.inf)])
        if dive_value < heuristic:
            incumbent = dived
    if not linked:  # also when out of time: its first step covers every slot left short
        # its own share only: the dive's unused time rolls forward to the channels after it,
        # whose column generation needs it more (a full run gave that up for the ruin steps:
        # 168 channels converged instead of 265, docs/planning.md)
        incumbent = local_search(master, incumbent, limits.local_search_s, limits.ruin, limits.seed)
    searched = float(np.asarray(master.cost) @ incumbent)
    keep_promising(master, limits.mip_columns, incumbent, lp_values, reduced)
    integrality = [highspy.HighsVarType.kContinuous] * n_slack + [highspy.HighsVarType.kInteger] * len(
        master.cols
    )
    h.changeColsIntegrality(
        len(integrality), np.arange(len(integrality), dtype=np.int32), np.asarray(integrality)
    )
    h.setOptionValue("presolve", "on")
    h.setOptionValue("mip_rel_gap", limits.mip_gap)
    h.setOptionValue("time_limit", max(limits.mip_time_limit_s, 0.1))
    h.setSolution(incumbent.size, np.arange(incumbent.size, dtype=np.int32), incumbent)
    values, objective = incumbent, searched
    if searched > lp_bound * (1 + limits.mip_gap):
        h.run()
        info = h.getInfo()
        found = np.round(np.asarray(h.getSolution().col_value), 6)
        if info.primal_solution_status == 2 and float(np.asarray(master.cost) @ found) < searched - 1e-6:
            values, objective = found, float(np.asarray(master.cost) @ found)
    t2 = time.perf_counter()
    result = _result(region, master, values, lp_bound, objective, rounds, t1 - t0, t2 - t1)
    result.stats = {
        "lp_value": lp_value,
        "heuristic": heuristic,
        "dive": dive_value,
        "local_search": searched,
        "converged": float(converged),
        "rounds": float(rounds),
        "mispriced": float(gen.mispriced),
        "cg_seconds": gen.seconds,
        "mip_dual_bound_restricted": float(getattr(h.getInfo(), "mip_dual_bound", 0.0)),
    }
    if len(master.channels) == 1:
        stats = {"bound": lp_bound, "paid_hours": result.paid_hours, "objective": objective}
        result.by_channel = {master.channels[0]: {**stats, **result.stats}}
    return result


def _result(
    region: str,
    master: Master,
    values: np.ndarray,
    lp_bound: float,
    objective: float,
    rounds: int,
    lp_s: float,
    mip_s: float,
) -> ScheduleResult:
    cat = master.cover.catalogue
    n_slack = master.n_cover
    agents: dict[tuple[str, int], int] = {}
    for (k, j), v in zip(master.cols, values[n_slack:], strict=True):
        if round(v) > 0:
            agents[(k, j)] = round(v)
    under = {}
    for k in master.channels:
        rows = master.row_of[k]
        u = np.zeros(SLOTS_PER_WEEK)
        u[rows >= 0] = values[rows[rows >= 0]]
        under[k] = np.round(u, 6)
    paid = float(sum(cat.paid_hours[j] * a for (_, j), a in agents.items()))
    gap = (objective - lp_bound) / objective if objective > 0 else 0.0
    return ScheduleResult(
        region, agents, paid, lp_bound, objective, max(gap, 0.0), under, len(master.cols), rounds, lp_s, mip_s
    )


def planned_on_floor(result: ScheduleResult, cover: CoverageMatrix, channel: str) -> np.ndarray:
    """Agents on the floor per local week slot for one channel."""
    out = np.zeros(SLOTS_PER_WEEK, dtype=np.int64)
    for (k, j), a in result.agents.items():
        if k == channel:
            out[cover.column(j)] += a
    return out
