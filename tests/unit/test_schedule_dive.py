"""Fix-and-price diving: an integer cover of every slot, never below the integer optimum,
and the master's LP bounds left as the column generation had them."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csc_matrix

from streams.planning.catalogue import SLOTS_PER_WEEK, CatalogueConfig, _rotations, build_catalogue
from streams.planning.dive import dive
from streams.planning.master import Master
from streams.planning.schedule import CoverageMatrix, Limits, planned_on_floor, solve_region

pytestmark = pytest.mark.unit


def _instance(seed: int) -> tuple[CoverageMatrix, np.ndarray, float]:
    cfg = CatalogueConfig(
        start_step_slots=16, lengths_h=(8,), lunch_choices=(0,), patterns={"5/2": _rotations(5, 2)}
    )
    cat = build_catalogue(cfg)
    indptr, indices = cat.coverage_csc()
    a = csc_matrix((np.ones(indices.size), indices, indptr), shape=(SLOTS_PER_WEEK, cat.size))
    rng = np.random.default_rng(seed)
    x0 = rng.integers(0, 2, cat.size) * (rng.random(cat.size) < 0.3)
    demand = np.minimum(a @ x0, 2).astype(int)
    need = demand > 0
    ip = milp(
        cat.paid_hours,
        constraints=LinearConstraint(a[need], demand[need], np.inf),
        integrality=np.ones(cat.size),
        bounds=Bounds(0, 50),
    )
    return CoverageMatrix(cat), demand, float(ip.fun)


@pytest.mark.parametrize("seed", [7, 11])
def test_dive_is_an_integer_cover_and_restores_the_master(seed: int) -> None:
    cover, demand, ip_opt = _instance(seed)
    master = Master({"VOICE": demand}, Limits(), cover)
    master.add("VOICE", np.arange(cover.catalogue.size))  # every column: the LP is the catalogue's
    master.h.run()
    lower = np.asarray(master.h.getLp().col_lower_).copy()
    x = dive(master, seconds=30.0)
    n_slack = master.n_cover
    assert np.allclose(x[n_slack:], np.round(x[n_slack:]))
    assert (x[:n_slack] == 0).all()  # no under-coverage
    floor = np.zeros(SLOTS_PER_WEEK)
    for (_, j), v in zip(master.cols, x[n_slack:], strict=True):
        floor[cover.column(j)] += v
    assert (floor >= demand).all()
    assert float(np.asarray(master.cost) @ x) >= ip_opt - 1e-6
    assert np.array_equal(np.asarray(master.h.getLp().col_lower_), lower)


@pytest.mark.parametrize("seed", [7, 11])
def test_schedule_with_dive_and_search_covers_and_bound_stays_below_the_optimum(seed: int) -> None:
    cover, demand, ip_opt = _instance(seed)
    result = solve_region("X", {"VOICE": demand}, cover, Limits(mip_time_limit_s=0.01))
    assert result.lp_bound <= ip_opt + 1e-6
    assert result.paid_hours >= ip_opt - 1e-6
    assert result.stats["local_search"] <= min(result.stats["dive"], result.stats["heuristic"]) + 1e-6
    assert result.under_slots == 0
    assert (planned_on_floor(result, cover, "VOICE") >= demand).all()
