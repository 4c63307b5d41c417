"""A small shift-scheduling instance with a known LP and integer optimum, for the schedule's
unit tests (the gap, the dive, the local search, the stabilised column generation).

A reduced catalogue (starts every 4 h, one lunch placement, 5/2 patterns) and a demand
that a random cover ``x0`` meets, capped at 2 agents a slot, so it is feasible and its LP
optimum is fractional; scipy's HiGHS solves the LP and the integer program over the whole
catalogue, independently of the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import csc_matrix

from streams.planning.catalogue import SLOTS_PER_WEEK, Catalogue, CatalogueConfig, _rotations, build_catalogue
from streams.planning.improve import SlotIndex
from streams.planning.master import CoverageMatrix


@dataclass(frozen=True)
class SmallInstance:
    catalogue: Catalogue
    cover: CoverageMatrix
    x0: np.ndarray  # the random cover the demand comes from
    demand: np.ndarray  # agents per week slot
    lp_opt: float  # LP relaxation over the whole catalogue
    ip_opt: float  # integer optimum over the whole catalogue

    @property
    def slot_index(self) -> SlotIndex:
        return SlotIndex(self.cover.indptr, self.cover.indices, SLOTS_PER_WEEK)


def small_instance(seed: int, lengths_h: tuple[int, ...] = (8,), most_per_variant: int = 1) -> SmallInstance:
    """``most_per_variant``: the random cover's agents per variant (0 to this many)."""
    cfg = CatalogueConfig(
        start_step_slots=16, lengths_h=lengths_h, lunch_choices=(0,), patterns={"5/2": _rotations(5, 2)}
    )
    cat = build_catalogue(cfg)
    indptr, indices = cat.coverage_csc()
    a = csc_matrix((np.ones(indices.size), indices, indptr), shape=(SLOTS_PER_WEEK, cat.size))
    rng = np.random.default_rng(seed)
    x0 = rng.integers(0, most_per_variant + 1, cat.size) * (rng.random(cat.size) < 0.3)
    demand = np.minimum(a @ x0, 2).astype(int)
    need = demand > 0
    lp = linprog(cat.paid_hours, A_ub=-a[need], b_ub=-demand[need], bounds=(0, 50), method="highs")
    ip = milp(
        cat.paid_hours,
        constraints=LinearConstraint(a[need], demand[need], np.inf),
        integrality=np.ones(cat.size),
        bounds=Bounds(0, 50),
    )
    return SmallInstance(cat, CoverageMatrix(cat), x0, demand, float(lp.fun), float(ip.fun))
