"""Regions planned one after another or in processes side by side (streams/planning/regions.py):
the same regions planned, every slot covered, integer optima found on small instances whose
optimum scipy computes independently, and a failing child fails the run with its traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.planning import small_instance

from streams.planning import regions as regions_module
from streams.planning.regions import Week, balanced, schedule_in_turn, schedule_side_by_side
from streams.planning.schedule import Limits, planned_on_floor

pytestmark = pytest.mark.unit
LIMITS = Limits(mip_gap=0.0, columns_per_round=5)


def test_balanced_splits_by_share_and_keeps_the_order() -> None:
    share = {"A": 0.4, "B": 0.3, "C": 0.2, "D": 0.1}
    parts = balanced(["A", "B", "C", "D"], share, 2)
    assert parts == [["A", "D"], ["B", "C"]]  # 0.5 and 0.5, each in the given order
    assert balanced(["A", "B"], share, 4) == [["A"], ["B"]]  # no empty part


def test_side_by_side_plans_every_region_as_in_turn_does() -> None:
    instances = {f"R{seed}": small_instance(seed) for seed in (3, 7, 11)}
    cover = next(iter(instances.values())).cover  # one catalogue for all: the same config
    demand = {r: {"VOICE": inst.demand} for r, inst in instances.items()}
    share = dict.fromkeys(instances, 1.0)
    order = list(instances)
    seen: list[str] = []
    week = Week(demand, share, cover, LIMITS)
    in_turn = schedule_in_turn(order, week)
    side = schedule_side_by_side(order, week, 2, seen.append)
    assert sorted(side) == sorted(in_turn) == sorted(order) and sorted(seen) == sorted(order)
    for region, inst in instances.items():
        floor = planned_on_floor(side[region], cover, "VOICE")
        assert (floor >= inst.demand).all()  # every slot covered
        # both find the integer optimum scipy computed over the whole catalogue
        assert side[region].paid_hours == pytest.approx(inst.ip_opt)
        assert in_turn[region].paid_hours == pytest.approx(inst.ip_opt)


def test_a_failing_process_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    inst = small_instance(3)
    demand = {"A": {"VOICE": inst.demand}, "B": {"VOICE": inst.demand}}

    def broken(region: str, *args: object) -> object:
        if region == "B":
            raise ValueError("no solution for B")
        return real(region, *args)

    real = regions_module.solve_region
    monkeypatch.setattr(regions_module, "solve_region", broken)  # the forked child inherits it
    with pytest.raises(RuntimeError, match="no solution for B"):
        schedule_side_by_side(["A", "B"], Week(demand, {"A": 1.0, "B": 1.0}, inst.cover, LIMITS), 2)


def test_highs_banner_stays_off_stdout() -> None:
    """`ccpulse plan schedule --json` prints JSON only: HiGHS's banner (its first instance in a
    process prints it, before any option) goes to stderr."""
    code = "from streams.planning.master import quiet_highs; quiet_highs(); quiet_highs(); print('json')"
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout == "json\n"
    assert "HiGHS" in done.stderr
