"""The schedule's gap is measured against the catalogue-wide LP bound, on an instance whose
LP and integer optima are computed independently (scipy's HiGHS over the whole catalogue)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from support.planning import small_instance

from streams.planning.rounding import floor_and_greedy, round_up_and_drop
from streams.planning.schedule import Limits, planned_on_floor, solve_region

pytestmark = pytest.mark.unit


def test_gap_is_against_the_catalogue_lp_bound_not_the_restricted_mip() -> None:
    inst = small_instance(7)  # 42 variants: starts every 4 h, 8 h shifts, 5/2 patterns
    cover, demand, lp_opt, ip_opt = inst.cover, inst.demand, inst.lp_opt, inst.ip_opt
    assert ip_opt > lp_opt + 1  # an instance with an integrality gap: 280 h vs 266.7 h
    result = solve_region("X", {"VOICE": demand}, cover, Limits(mip_gap=0.0, columns_per_round=5))
    assert result.stats["converged"] == 1.0
    # the bound is the LP over the whole catalogue (rounded up: every cost is whole hours) ...
    assert result.lp_bound == pytest.approx(math.ceil(lp_opt - 1e-6))
    assert result.lp_bound <= ip_opt
    # ... the solution is the integer optimum, and the gap is between those two
    assert result.objective == pytest.approx(ip_opt)
    assert result.paid_hours == pytest.approx(ip_opt)
    assert result.gap == pytest.approx((ip_opt - math.ceil(lp_opt)) / ip_opt)
    assert result.gap > 0.04  # the restricted MIP's own bound (= its optimum) would say 0
    assert result.stats["mip_dual_bound_restricted"] >= result.lp_bound
    assert result.under_slots == 0
    assert (planned_on_floor(result, cover, "VOICE") >= demand).all()


def test_rounding_heuristics_cover_what_the_lp_covers() -> None:
    rows = [np.array([0, 1]), np.array([1, 2]), np.array([2, 3]), np.array([0, 3])]
    cost = np.array([8.0, 8.0, 8.0, 8.0])
    demand = np.array([1.0, 1.0, 1.0, 1.0])
    lp = np.array([0.5, 0.5, 0.5, 0.5])  # the LP optimum of a 4-cycle: 16 h
    for x in (
        round_up_and_drop(lp, rows, cost, demand, 50.0),
        floor_and_greedy(lp, rows, cost, demand, np.full(4, 50.0)),
    ):
        covered = np.zeros(4)
        for i, r in enumerate(rows):
            covered[r] += x[i]
        assert (covered >= demand).all()
        assert cost @ x == 16.0  # two opposite edges: the integer optimum
