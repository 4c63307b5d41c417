"""Fix-and-price diving: an integer cover of every slot, never below the integer optimum,
and the master's LP bounds left as the column generation had them."""

from __future__ import annotations

import numpy as np
import pytest
from support.planning import small_instance

from streams.planning.catalogue import SLOTS_PER_WEEK
from streams.planning.dive import dive
from streams.planning.master import Master
from streams.planning.schedule import Limits, planned_on_floor, solve_region

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("seed", [7, 11])
def test_dive_is_an_integer_cover_and_restores_the_master(seed: int) -> None:
    inst = small_instance(seed)
    cover, demand, ip_opt = inst.cover, inst.demand, inst.ip_opt
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
    inst = small_instance(seed)
    cover, demand, ip_opt = inst.cover, inst.demand, inst.ip_opt
    result = solve_region("X", {"VOICE": demand}, cover, Limits(mip_time_limit_s=0.01))
    assert result.lp_bound <= ip_opt + 1e-6
    assert result.paid_hours >= ip_opt - 1e-6
    assert result.stats["local_search"] <= min(result.stats["dive"], result.stats["heuristic"]) + 1e-6
    assert result.under_slots == 0
    assert (planned_on_floor(result, cover, "VOICE") >= demand).all()
