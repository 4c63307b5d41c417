"""The budget left after every region is planned (streams/planning/polish.py): a channel left
above its integer optimum is solved again and brought down to it, a channel already there
is kept, the bound kept is the better of two, and every slot stays covered."""

from __future__ import annotations

import time

import numpy as np
import pytest
from support.planning import small_instance

from streams.planning.polish import polish, with_channel
from streams.planning.schedule import Limits, ScheduleResult, planned_on_floor, solve_region

pytestmark = pytest.mark.unit
LIMITS = Limits(mip_gap=0.0, columns_per_round=5)


def _worse(result: ScheduleResult, channel: str, variant: int, cost: float) -> None:
    """One agent more on ``variant`` for ``channel``: still a cover, ``cost`` dearer."""
    key = (channel, variant)
    result.agents[key] = result.agents.get(key, 0) + 1
    result.paid_hours += cost
    result.objective += cost
    result.by_channel[channel]["paid_hours"] += cost
    result.by_channel[channel]["objective"] += cost


def test_a_channel_above_its_optimum_is_brought_down_and_the_other_kept() -> None:
    voice, chat = small_instance(3), small_instance(7)
    cover = voice.cover
    demand = {"R": {"VOICE": voice.demand, "CHAT": chat.demand}}
    result = solve_region("R", demand["R"], cover, LIMITS)
    assert result.paid_hours == pytest.approx(voice.ip_opt + chat.ip_opt)
    j = int(np.argmax(cover.catalogue.paid_hours))
    _worse(result, "CHAT", j, float(cover.catalogue.paid_hours[j]))
    voice_agents = {k: a for k, a in result.agents.items() if k[0] == "VOICE"}
    results = {"R": result}
    polish(results, demand, cover, LIMITS, time.perf_counter() + 60.0)
    assert result.paid_hours == pytest.approx(voice.ip_opt + chat.ip_opt)
    assert result.by_channel["CHAT"]["paid_hours"] == pytest.approx(chat.ip_opt)
    assert {k: a for k, a in result.agents.items() if k[0] == "VOICE"} == voice_agents
    assert result.stats["polish_improved"] >= 1 and result.stats["polish_solves"] >= 1
    for channel, inst in (("VOICE", voice), ("CHAT", chat)):
        assert (planned_on_floor(result, cover, channel) >= inst.demand).all()
    assert result.objective == pytest.approx(result.paid_hours)  # nothing under-covered
    assert result.gap == pytest.approx(1 - result.lp_bound / result.objective)


def test_no_time_left_changes_nothing() -> None:
    inst = small_instance(11)
    demand = {"R": {"VOICE": inst.demand}}
    result = solve_region("R", demand["R"], inst.cover, LIMITS)
    _worse(result, "VOICE", 0, float(inst.cover.catalogue.paid_hours[0]))
    before = dict(result.agents)
    assert polish({"R": result}, demand, inst.cover, LIMITS, time.perf_counter()) == 0
    assert result.agents == before


def test_with_channel_keeps_the_cheaper_schedule_and_the_better_bound() -> None:
    inst = small_instance(3)
    demand = {"VOICE": inst.demand}
    result = solve_region("R", demand, inst.cover, LIMITS)
    dearer = solve_region("R", demand, inst.cover, LIMITS)
    _worse(dearer, "VOICE", 0, float(inst.cover.catalogue.paid_hours[0]))
    dearer.by_channel["VOICE"]["bound"] += 1.0  # a (made-up) better bound travels on its own
    agents, paid = dict(result.agents), result.paid_hours
    assert not with_channel(result, dearer)
    assert result.agents == agents and result.paid_hours == paid
    assert result.lp_bound == pytest.approx(dearer.by_channel["VOICE"]["bound"])
    worse = solve_region("R", demand, inst.cover, LIMITS)
    _worse(worse, "VOICE", 0, float(inst.cover.catalogue.paid_hours[0]))
    assert with_channel(worse, result)
    assert worse.paid_hours == pytest.approx(paid) and worse.agents == agents
