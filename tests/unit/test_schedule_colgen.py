"""The stabilised column generation: the bound it reports is a valid lower bound at every
round (never above the catalogue's LP optimum, hence never above the integer optimum),
converging gives the LP optimum itself, and the column pool is a warm start only."""

from __future__ import annotations

import math

import numpy as np
import pytest
from support.planning import small_instance

from streams.planning.colgen import ColumnPool, generate, lower_bound
from streams.planning.master import Limits, Master
from streams.planning.schedule import solve_region

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("seed", [7, 11])
@pytest.mark.parametrize("smoothing", [0.0, 0.5, 0.8])
@pytest.mark.parametrize("rounds", [1, 2, 3, 5, 200])
def test_bound_at_any_round_is_below_the_lp_optimum(seed: int, smoothing: float, rounds: int) -> None:
    inst = small_instance(seed)
    limits = Limits(smoothing=smoothing, max_rounds=rounds, columns_per_round=3)
    master = Master({"VOICE": inst.demand}, limits, inst.cover)
    gen = generate(master, budget_s=60.0)
    assert gen.bound <= inst.lp_opt + 1e-6
    assert gen.bound <= inst.ip_opt
    assert gen.rounds <= rounds
    if gen.converged:
        assert gen.bound == pytest.approx(inst.lp_opt)
        assert master.h.getInfo().objective_function_value == pytest.approx(inst.lp_opt)
    if rounds == 200:
        assert gen.converged  # 42 variants, 3 a round: it gets there


@pytest.mark.parametrize("seed", [7, 11])
def test_the_bound_formula_holds_for_any_duals_not_only_the_masters(seed: int) -> None:
    inst = small_instance(seed)
    master = Master({"VOICE": inst.demand}, Limits(), inst.cover)
    rng = np.random.default_rng(seed)
    n = master.n_cover
    for _ in range(50):
        # any y >= 0 with y <= the under-coverage penalty is dual feasible for the slacks
        y = np.zeros(n + 1)
        y[:n] = rng.random(n) * rng.choice([0.1, 1.0, 10.0, 100.0])
        rc = {"VOICE": master.price("VOICE", y)}
        value, point = lower_bound(master, y, rc)
        assert value <= inst.lp_opt + 1e-6
        # the point returned gives that value (Farley's: the scaled duals are dual feasible)
        assert float(master.lower[:n] @ point[:n]) >= value - 1e-6


def test_a_seeded_pool_converges_to_the_same_lp_and_the_schedule_keeps_its_bound() -> None:
    first, second = small_instance(7), small_instance(11)
    assert first.catalogue.size == second.catalogue.size
    pool = ColumnPool()
    generate(Master({"VOICE": first.demand}, Limits(columns_per_round=3), first.cover), 60.0, pool)
    assert pool.seed("VOICE").size > 0
    master = Master({"VOICE": second.demand}, Limits(columns_per_round=3, max_rounds=200), second.cover)
    gen = generate(master, 60.0, pool)
    assert gen.converged
    assert gen.bound == pytest.approx(second.lp_opt)
    # the whole schedule with the pool: the bound stays below the optimum, the plan above it
    result = solve_region("X", {"VOICE": second.demand}, second.cover, Limits(mip_gap=0.0), pool)
    assert result.lp_bound == pytest.approx(math.ceil(second.lp_opt - 1e-6))
    assert result.lp_bound <= second.ip_opt
    assert result.paid_hours >= second.ip_opt - 1e-6
    assert result.under_slots == 0
