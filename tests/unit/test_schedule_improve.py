"""The local search over the catalogue: every move keeps coverage and lowers paid hours,
and on an instance with a known integer optimum it never goes below that optimum."""

from __future__ import annotations

import numpy as np
import pytest
from support.planning import small_instance

from streams.planning.catalogue import SLOTS_PER_WEEK
from streams.planning.improve import SlotIndex, fill_short, improve_cover, ruin_and_recreate

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
    inst = small_instance(3, lengths_h=(6, 8), most_per_variant=2)
    cost = inst.catalogue.paid_hours.astype(float)
    index = inst.slot_index
    start = {int(j): int(v) for j, v in enumerate(inst.x0) if v > 0}
    x = improve_cover(start, inst.demand.astype(float), cost, index, time_limit_s=10.0)
    paid = sum(float(cost[j]) * v for j, v in x.items())
    assert (_covered(index, x, SLOTS_PER_WEEK) >= inst.demand).all()
    assert inst.ip_opt - 1e-6 <= paid < float(cost @ inst.x0)


def test_fill_short_covers_every_slot_from_an_empty_or_partial_cover() -> None:
    inst = small_instance(3, lengths_h=(6, 8), most_per_variant=2)
    cost = inst.catalogue.paid_hours.astype(float)
    index = inst.slot_index
    some = {int(j): int(v) for j, v in list(enumerate(inst.x0))[:40] if v > 0}
    for start in ({}, some):
        x = fill_short(start, inst.demand.astype(float), cost, index)
        assert (_covered(index, x, SLOTS_PER_WEEK) >= inst.demand).all()
        assert all(x.get(j, 0) >= a for j, a in start.items())  # it only adds agents
        assert sum(float(cost[j]) * v for j, v in x.items()) >= inst.ip_opt - 1e-6


@pytest.mark.parametrize("seed", [3, 5])
def test_ruin_and_recreate_covers_and_stays_between_the_optimum_and_the_start(seed: int) -> None:
    inst = small_instance(seed, lengths_h=(6, 8), most_per_variant=2)
    cost = inst.catalogue.paid_hours.astype(float)
    index = inst.slot_index
    start = {int(j): int(v) for j, v in enumerate(inst.x0) if v > 0}
    x = ruin_and_recreate(start, inst.demand.astype(float), cost, index, time_limit_s=1.0, seed=seed)
    paid = sum(float(cost[j]) * v for j, v in x.items())
    assert (_covered(index, x, SLOTS_PER_WEEK) >= inst.demand).all()
    assert inst.ip_opt - 1e-6 <= paid < float(cost @ inst.x0)
