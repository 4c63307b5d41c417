"""Column generation on the master LP, with Wentges smoothing of the duals and a valid
lower bound at every round.

Each round solves the restricted master (HiGHS, warm-started) for its duals ``y_out`` and
prices the whole catalogue with one sparse product. Unstabilised, the pricing uses
``y_out`` itself; those duals jump from round to round on this degenerate covering LP
(many slots, many near-equivalent shifts) and the generation tails off. With smoothing
(``Limits.smoothing`` = alpha > 0, Wentges 1997) the pricing uses

    y_sep = alpha * y_in + (1 - alpha) * y_out

where ``y_in``, the stability centre, is the dual vector with the best lower bound found
so far. When pricing at ``y_sep`` finds no negative reduced cost (a mis-pricing) the
round prices ``y_out`` instead: if that finds none either, the master's LP is the LP over
the whole catalogue (converged), so smoothing never stops the generation early and never
changes what convergence means.

The bound. For any duals y >= 0 of the cover rows (and y_t <= the under-coverage
penalty, which every convex combination of master duals keeps) two lower bounds on the
catalogue-wide LP are valid whatever the master holds:

- Lagrangian: b'y + cap * y_cap + sum_j min(0, rc_j(y)) * max_per_variant;
- Farley (no cap or part-time row): b'y / max(1, max_j a_j'y / c_j), the duals scaled
  into dual feasibility of the LP without per-variant upper bounds, which is a relaxation.

Every y priced (``y_out`` and ``y_sep``) is evaluated and the best kept, so an early stop
at the budget still reports a valid bound; the stability centre is the dual point of the
best one (for Farley's, the scaled duals: unscaled, the first round's duals, the penalty
on every slot, would pull every later pricing towards pricing every long shift in).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from streams.planning.master import Master


class ColumnPool:
    """Variants worth starting the next master with, per channel: the LP support of the
    channels solved before (every region plans in its own local week, so the same
    catalogue variants fit a channel's daily shape across regions). Seeding is a warm
    start only: the bound and the convergence test are those of the pricing."""

    def __init__(self, size: int = 800) -> None:
        self.size = size
        self.columns: dict[str, np.ndarray] = {}

    def seed(self, channel: str) -> np.ndarray:
        return self.columns.get(channel, np.zeros(0, dtype=np.int64))

    def remember(self, channel: str, support: np.ndarray) -> None:
        # the newest support first, then what was kept before, up to ``size`` variants
        merged = np.concatenate([support.astype(np.int64), self.seed(channel)])
        _, first = np.unique(merged, return_index=True)
        self.columns[channel] = merged[np.sort(first)][: self.size]


@dataclass
class Generation:
    bound: float  # valid lower bound on the LP over the whole catalogue
    converged: bool
    rounds: int
    mispriced: int  # rounds whose smoothed duals found no column (priced again at y_out)
    seconds: float


def _price_all(master: Master, y: np.ndarray) -> dict[str, np.ndarray]:
    return {k: master.price(k, y) for k in master.channels}


def lower_bound(master: Master, y: np.ndarray, rc: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
    """The better of the Lagrangian and (without cap or part-time row) Farley's bound at y,
    with the duals that give it (Farley's are y scaled into dual feasibility)."""
    limits = master.limits
    n = master.n_cover
    cover_value = float(master.lower[:n] @ y[:n])
    lagrange = cover_value
    if master.cap_row >= 0:
        lagrange += float(limits.headcount_cap or 0) * float(y[master.cap_row])
    ratio = 1.0
    cost = master.cover.catalogue.paid_hours
    for r in rc.values():
        lagrange += float(np.minimum(r, 0.0).sum()) * limits.max_per_variant
        ratio = max(ratio, float(((cost - r) / cost).max()))
    if master.cap_row >= 0 or limits.min_part_time_share > 0.0:
        return lagrange, y
    # the slack columns (cost = penalty, one row each) must stay dual feasible after scaling
    ratio = max(ratio, float(y[:n].max(initial=0.0)) / limits.under_penalty)
    if cover_value / ratio > lagrange:
        return cover_value / ratio, y / ratio
    return lagrange, y


def _add_negative(master: Master, rc: dict[str, np.ndarray], per_round: int) -> int:
    return sum(master.add_most_negative(k, r, per_round) for k, r in rc.items())


def generate(master: Master, budget_s: float, pool: ColumnPool | None = None) -> Generation:
    """Columns into ``master`` until no variant prices out, ``budget_s`` is spent or
    ``limits.max_rounds`` rounds ran; the master's LP is solved over every column on return.
    With a ``pool`` the master starts with its columns and the LP's support goes back into it."""
    t0 = time.perf_counter()
    limits = master.limits
    h = master.h
    if pool is not None:
        for k in master.channels:
            seed = pool.seed(k)
            if seed.size:
                master.add(k, seed)
    alpha = limits.smoothing
    best, centre = -np.inf, None
    rounds = mispriced = 0
    converged = False
    dirty = True  # columns added since the master's LP was last solved
    while rounds < limits.max_rounds:
        h.run()
        dirty = False
        lp_value = h.getInfo().objective_function_value  # (info is reset when columns are added)
        y_out = np.asarray(h.getSolution().row_dual)
        solved_with = len(master.cols)
        rounds += 1
        added = 0
        if centre is not None and alpha > 0:
            y_sep = alpha * centre + (1.0 - alpha) * y_out
            rc = _price_all(master, y_sep)
            value, point = lower_bound(master, y_sep, rc)
            if value > best:
                best, centre = value, point
            added = _add_negative(master, rc, limits.columns_per_round)
            dirty = dirty or added > 0
            if not added:
                mispriced += 1
        if not added or limits.two_point:
            rc = _price_all(master, y_out)
            value, point = lower_bound(master, y_out, rc)
            if value > best:
                best, centre = value, point
            # columns the smoothed pricing just added count too: were they negative at y_out?
            fresh = any(rc[k][j] < -1e-6 for k, j in master.cols[solved_with:])
            more = _add_negative(master, rc, limits.columns_per_round)
            dirty = dirty or more > 0
            if not more and not fresh:
                # no negative reduced cost at the duals of the LP just solved: it is the catalogue's
                converged = True
                best = max(best, lp_value)
                break
        if time.perf_counter() - t0 > budget_s:
            break
    if dirty:
        h.run()  # the LP over every column generated, for the integer heuristics
    if pool is not None:
        x = np.asarray(h.getSolution().col_value)[master.n_cover :]
        used = [(c, j) for (c, j), v in zip(master.cols, x, strict=True) if v > 1e-6]
        for k in master.channels:
            pool.remember(k, np.asarray([j for c, j in used if c == k], dtype=np.int64))
    return Generation(float(best), converged, rounds, mispriced, time.perf_counter() - t0)
