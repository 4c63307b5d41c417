"""The twin plays out shrinkage on a plan's agents (streams/simulator/planned.py): some are
absent for a shift and never log in, some are off the phones for an interval (NOT_READY,
reason OFFLINE) and back at the next one; never during a break or outside the shift. The
traffic is the same contacts either way (the draws are the cohorts' own)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from streams.domain.events import AgentState, Channel, ContactEventType
from streams.domain.shift_plan import INTERVAL_MS, Break, ShiftAssignment
from streams.simulator import SimConfig, Simulation
from streams.simulator.config import ChannelParams, HandleTime, TwinShrinkage
from streams.simulator.model import AGENT, CONTACT

pytestmark = pytest.mark.unit
START = datetime(2026, 5, 11, tzinfo=UTC)
T0 = int(START.timestamp() * 1000)
H = 3_600_000
# voice only, 30 s handle time: a contact rarely outlasts 10 minutes, so the floor is exact by
# each interval's 10th minute (tests/unit/test_simulator_planned.py uses the same set-up)
VOICE = MappingProxyType({Channel.VOICE: ChannelParams(1.0, HandleTime(30.0), 40.0, 120.0, 1, "voice")})
BREAK_AT = T0 + 9 * H
SHIFT = ShiftAssignment(
    "RU-KGD",
    "VOICE",
    "day",
    T0 + 6 * H,
    T0 + 12 * H,
    120,
    (Break(BREAK_AT, BREAK_AT + INTERVAL_MS, "BREAK"),),
)
CONFIG = SimConfig(regions=("RU-KGD",), channels=VOICE, contacts_per_month=15_200_000.0, shifts=(SHIFT,))
PEOPLE = TwinShrinkage(absence=0.1, offline=0.2)

Item = tuple[int, str, AgentState, object]


def run(shrinkage: TwinShrinkage | None, seed: int = 3) -> tuple[list[Item], list[int]]:
    """(agent items: time, agent, state, reason) and the ARRIVED contacts' times of 14 hours."""
    sim = Simulation(replace(CONFIG, shrinkage=shrinkage), seed=seed, start=START, duration_s=14 * 3600)
    agents, arrivals = [], []
    for batch in sim.batches():
        for t, _, kind, subject, a, b in batch:
            if kind == AGENT:
                agents.append((t, subject.agent_id, a, b))
            elif kind == CONTACT and a is ContactEventType.ARRIVED:
                arrivals.append(t)
    return agents, arrivals


@pytest.fixture(scope="module")
def people() -> tuple[list[Item], list[int]]:
    return run(PEOPLE)


def states_at(items: list[Item], t: int) -> dict[str, tuple[AgentState, object]]:
    last: dict[str, tuple[AgentState, object]] = {}
    for time_ms, agent_id, state, reason in items:
        if time_ms > t:
            break
        last[agent_id] = (state, reason)
    return {a: s for a, s in last.items() if s[0] is not AgentState.LOGGED_OUT}


def test_the_planner_shrinkage_splits_into_absence_and_offline() -> None:
    split = TwinShrinkage.of_total(0.20, absence=0.05)
    assert (1 - split.absence) * (1 - split.offline) == pytest.approx(0.80)
    assert TwinShrinkage.of_total(0.0, absence=0.0) == TwinShrinkage(0.0, 0.0)
    for total, absence in ((0.2, 0.3), (1.0, 0.0), (0.2, -0.1)):
        with pytest.raises(ValueError, match="absence"):
            TwinShrinkage.of_total(total, absence)
    with pytest.raises(ValueError, match="offline"):
        TwinShrinkage(0.0, 1.0)


def test_absent_agents_never_log_in(people: tuple[list[Item], list[int]]) -> None:
    items, _ = people
    log_ins = [t for t, _, state, _ in items if state is AgentState.LOGGED_IN]
    assert set(log_ins) == {SHIFT.start_ms}
    assert 120 * 0.9 - 12 <= len(log_ins) <= 120 * 0.9 + 12 and len(log_ins) < 120
    adherent, _ = run(None)
    assert sum(1 for _, _, state, _ in adherent if state is AgentState.LOGGED_IN) == 120


def test_offline_agents_are_off_the_phones_for_an_interval_and_never_on_a_break(
    people: tuple[list[Item], list[int]],
) -> None:
    items, _ = people
    present = sum(1 for _, _, state, _ in items if state is AgentState.LOGGED_IN)
    shares = []
    for t in range(SHIFT.start_ms, SHIFT.end_ms, INTERVAL_MS):
        reasons = defaultdict(int)
        for state, reason in states_at(items, t + 10 * 60_000).values():
            if state is AgentState.NOT_READY:
                reasons[reason] += 1
        assert len(states_at(items, t + 10 * 60_000)) == present  # nobody logs out mid-shift
        if t == BREAK_AT:
            assert dict(reasons) == {"BREAK": present}  # the break takes everyone, offline or not
        else:
            assert set(reasons) <= {"OFFLINE"}
            shares.append(reasons["OFFLINE"] / present)
    assert 0.15 <= sum(shares) / len(shares) <= 0.25, shares  # 0.2 drawn per agent and interval
    assert states_at(items, SHIFT.start_ms - 1) == {} and states_at(items, SHIFT.end_ms + 10 * 60_000) == {}
    # an agent back from OFFLINE is back at an interval boundary (or leaves at the shift's end)
    by_agent: dict[str, list[tuple[int, AgentState, object]]] = defaultdict(list)
    for t, agent_id, state, reason in items:
        by_agent[agent_id].append((t, state, reason))
    returns = 0
    for events in by_agent.values():
        for (_, state, reason), (t_next, next_state, _) in zip(events, events[1:], strict=False):
            if state is AgentState.NOT_READY and reason == "OFFLINE" and next_state is AgentState.READY:
                assert t_next % INTERVAL_MS == 0
                returns += 1
    assert returns > 100


def test_the_traffic_is_the_same_and_the_people_follow_the_seed(people: tuple[list[Item], list[int]]) -> None:
    items, arrivals = people
    _, adherent_arrivals = run(None)
    assert arrivals == adherent_arrivals  # paired comparisons: the same contacts arrive
    again, _ = run(PEOPLE)
    assert again == items
    other, _ = run(PEOPLE, seed=4)
    assert [(t, s, r) for t, _, s, r in other] != [(t, s, r) for t, _, s, r in items]
