"""The local search over the catalogue: every move keeps coverage and lowers paid hours,
and on an instance with a known integer optimum it never goes below that optimum."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csc_matrix

from streams.planning.catalogue import SLOTS_PER_WEEK, CatalogueConfig, _rotations, build_catalogue
from streams.planning.improve import SlotIndex, improve_cover

pytestmark = pytest.mark.unit


def _index(columns: list[list[int]], slots: int) -> SlotIndex:
    indptr = np.concatenate([[0], np.cumsum([len(c) for c in columns])])
    indices = np.concatenate([np.asarray(c, dtype=np.int64) for c in columns])
    return SlotIndex(indptr, indices, slots)


def _covered(index: SlotIndex, x: dict[int, int], slots: int) -> np.ndarray:
    out = np.zeros(slots)
    for j, a in x.items():
        out[index.column(j)] += a
    return out


def test_drop_swap_and_merge() -> None:
    # slots 0-3; a, b: halves at 8 h; c: the whole at 12 h; d: a's half at 5 h; e: spare
    index = _index([[0, 1], [2, 3], [0, 1, 2, 3], [0, 1], [1, 2]], 4)
    cost = np.array([8.0, 8.0, 12.0, 5.0, 6.0])
    demand = np.ones(4)
    assert improve_cover({0: 1, 1: 1, 4: 1}, demand, cost, index) == {2: 1}  # drop e, merge a + b
    # without c, a is swapped for the cheaper d covering the same slots
    index = _index([[0, 1], [2, 3], [3], [0, 1], [1, 2]], 4)
    assert improve_cover({0: 1, 1: 1}, demand, cost, index) == {3: 1, 1: 1}


def test_two_agents_on_one_slot_are_not_merged_into_one() -> None:
    index = _index([[0, 1], [0, 1], [0, 1]], 2)
    cost = np.array([8.0, 8.0, 12.0])
    demand = np.array([2.0, 2.0])
    x = improve_cover({0: 1, 1: 1}, demand, cost, index)
    assert (_covered(index, x, 2) >= demand).all()
    assert sum(cost[j] * a for j, a in x.items()) == 16.0


def test_slots_left_short_stay_as_covered_as_before() -> None:
    index = _index([[0], [0, 1], [1]], 2)
    cost = np.array([4.0, 5.0, 4.0])
    x = improve_cover({0: 1}, np.array([1.0, 3.0]), cost, index)  # slot 1 short: nothing asks more
    assert (_covered(index, x, 2) >= np.array([1.0, 0.0])).all()
    assert sum(cost[j] * a for j, a in x.items()) <= 4.0


def test_on_a_catalogue_instance_the_search_covers_and_stays_above_the_optimum() -> None:
    cfg = CatalogueConfig(
        start_step_slots=16, lengths_h=(6, 8), lunch_choices=(0,), patterns={"5/2": _rotations(5, 2)}
    )
    cat = build_catalogue(cfg)
    indptr, indices = cat.coverage_csc()
    a = csc_matrix((np.ones(indices.size), indices, indptr), shape=(SLOTS_PER_WEEK, cat.size))
    rng = np.random.default_rng(3)
    x0 = rng.integers(0, 3, cat.size) * (rng.random(cat.size) < 0.3)
    demand = np.minimum(a @ x0, 2).astype(float)
    need = demand > 0
    ip = milp(
        cat.paid_hours,
        constraints=LinearConstraint(a[need], demand[need], np.inf),
        integrality=np.ones(cat.size),
        bounds=Bounds(0, 50),
    )
    index = SlotIndex(indptr, indices, SLOTS_PER_WEEK)
    start = {int(j): int(v) for j, v in enumerate(x0) if v > 0}
    x = improve_cover(start, demand, cat.paid_hours.astype(float), index, time_limit_s=10.0)
    paid = sum(float(cat.paid_hours[j]) * v for j, v in x.items())
    assert (_covered(index, x, SLOTS_PER_WEEK) >= demand).all()
    assert ip.fun - 1e-6 <= paid < float(cat.paid_hours @ x0)
