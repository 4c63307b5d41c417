"""The twin follows a hand-written plan exactly: agents log in at shift starts, go NOT_READY
with the break's reason (after their contact when busy), come back, and log out at shift
ends; nobody is logged in outside the shifts; regions outside the plan keep the simulator's
own staffing."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from streams.domain.events import AgentState, Channel
from streams.domain.shift_plan import INTERVAL_MS, Break, ShiftAssignment
from streams.simulator import SimConfig, Simulation
from streams.simulator.config import ChannelParams, HandleTime
from streams.simulator.model import AGENT
from streams.wire.codec import Codec

pytestmark = pytest.mark.unit
START = datetime(2026, 5, 11, tzinfo=UTC)
T0 = int(START.timestamp() * 1000)
H = 3_600_000
# voice only, 30 s handle time: a contact rarely outlasts 10 minutes, so the floor is exact by
# each interval's 10th minute; four times the default volume keeps agents busy at break starts
VOICE = MappingProxyType({Channel.VOICE: ChannelParams(1.0, HandleTime(30.0), 40.0, 120.0, 1, "voice")})
CONFIG = SimConfig(regions=("RU-KGD",), channels=VOICE, contacts_per_month=15_200_000.0)
SHIFTS = (
    ShiftAssignment("RU-KGD", "VOICE", "early", T0 + 6 * H, T0 + 10 * H, 2, (
        Break(T0 + 7 * H, T0 + 7 * H + INTERVAL_MS, "BREAK"),
        Break(T0 + 8 * H, T0 + 8 * H + 2 * INTERVAL_MS, "LUNCH"),
    )),
    ShiftAssignment("RU-KGD", "VOICE", "late", T0 + 7 * H, T0 + 12 * H, 1, (
        Break(T0 + 9 * H, T0 + 9 * H + INTERVAL_MS, "BREAK"),
    )),
    ShiftAssignment("RU-KGD", "VOICE", "short", T0 + 8 * H + INTERVAL_MS, T0 + 9 * H, 1),
)  # fmt: skip


def agent_items(config: SimConfig, hours: float) -> list[tuple[int, str, str, AgentState, object]]:
    sim = Simulation(config, seed=3, start=START, duration_s=hours * 3600)
    return [
        (t, agent.region, agent.agent_id, state, reason)
        for batch in sim.batches()
        for t, _, kind, agent, state, reason in batch
        if kind == AGENT
    ]


@pytest.fixture(scope="module")
def items() -> list[tuple[int, str, str, AgentState, object]]:
    return agent_items(replace(CONFIG, shifts=SHIFTS), 14)


def on_shift(t: int) -> int:
    return sum(s.agents for s in SHIFTS if s.start_ms <= t < s.end_ms)


def on_break(t: int) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for s in SHIFTS:
        for b in s.breaks:
            if b.start_ms <= t < b.end_ms:
                out[b.reason] += s.agents
    return dict(out)


def states_at(
    items: list[tuple[int, str, str, AgentState, object]], t: int
) -> dict[str, tuple[AgentState, object]]:
    """Each agent's last state (and NOT_READY reason) at time t; logged-out agents left out."""
    last: dict[str, tuple[AgentState, object]] = {}
    for time_ms, _, agent_id, state, reason in items:
        if time_ms > t:
            break
        last[agent_id] = (state, reason)
    return {a: s for a, s in last.items() if s[0] is not AgentState.LOGGED_OUT}


def test_logged_in_and_on_break_match_the_plan_in_every_interval(
    items: list[tuple[int, str, str, AgentState, object]],
) -> None:
    for t in range(T0, T0 + 14 * H, INTERVAL_MS):
        probe = t + 10 * 60_000
        states = states_at(items, probe)
        assert len(states) == on_shift(t), datetime.fromtimestamp(t / 1000, UTC)
        breaks: dict[str, int] = defaultdict(int)
        for state, reason in states.values():
            if state is AgentState.NOT_READY:
                assert reason in ("BREAK", "LUNCH"), (probe, reason)
                breaks[str(reason)] += 1
        assert dict(breaks) == on_break(t), datetime.fromtimestamp(t / 1000, UTC)


def test_log_ins_at_shift_starts_and_nobody_outside_shifts(
    items: list[tuple[int, str, str, AgentState, object]],
) -> None:
    log_ins = sorted(t for t, _, _, state, _ in items if state is AgentState.LOGGED_IN)
    assert log_ins == sorted(s.start_ms for s in SHIFTS for _ in range(s.agents))
    ends = sorted(s.end_ms for s in SHIFTS for _ in range(s.agents))
    log_outs = sorted(t for t, _, _, state, _ in items if state is AgentState.LOGGED_OUT)
    assert len(log_outs) == len(ends)
    for out, end in zip(log_outs, ends, strict=True):  # at the shift end, or when its last contact ends
        assert end <= out < end + 10 * 60_000
    assert states_at(items, T0 + 6 * H - 1) == {}
    assert states_at(items, T0 + 12 * H + 10 * 60_000) == {}


def test_breaks_carry_their_reason_and_busy_agents_finish_their_contact_first(
    items: list[tuple[int, str, str, AgentState, object]],
) -> None:
    by_agent: dict[str, list[tuple[int, AgentState, object]]] = defaultdict(list)
    for t, _, agent_id, state, reason in items:
        by_agent[agent_id].append((t, state, reason))
    starts = {b.start_ms: b for s in SHIFTS for b in s.breaks}
    taken = {"BREAK": 0, "LUNCH": 0}
    delayed = 0
    for events in by_agent.values():
        for k, (t, state, reason) in enumerate(events):
            if state is not AgentState.NOT_READY or reason is None:
                continue
            taken[str(reason)] += 1
            brk = next(b for start, b in starts.items() if start <= t < b.end_ms)
            assert brk.reason == reason
            if t > brk.start_ms:  # busy at the break's start: it went when its contact ended
                delayed += 1
                assert events[k - 1][1] is AgentState.ACW and events[k - 1][0] < t
            back = events[k + 1]  # nothing in between: no contact on a break
            assert back[1] is AgentState.READY and back[0] == brk.end_ms
    assert taken == {"BREAK": 3, "LUNCH": 2}
    assert delayed >= 1  # the busy case happened (deterministic for the seed)


def test_regions_outside_the_plan_keep_their_own_staffing() -> None:
    config = replace(CONFIG, regions=("RU-KGD", "RU-KAM"), shifts=SHIFTS)
    items = agent_items(config, 2)  # 00:00-02:00 UTC: no KGD shift yet, KAM's own plan staffs it
    regions = {region for _, region, _, state, _ in items if state is AgentState.LOGGED_IN}
    assert regions == {"RU-KAM"}


def test_unaligned_shift_is_refused() -> None:
    bad = ShiftAssignment("RU-KGD", "VOICE", "odd", T0 + 6 * H, T0 + 8 * H, 1,
                          (Break(T0 + 7 * H + 60_000, T0 + 7 * H + INTERVAL_MS, "BREAK"),))  # fmt: skip
    with pytest.raises(ValueError, match="15-minute boundary"):
        Simulation(replace(CONFIG, shifts=(bad,)), seed=3, start=START, duration_s=3600)


def test_the_break_reason_is_on_the_wire() -> None:
    """What the twin writes to cc.agent.events (the fast encoder's bytes, decoded by the codec):
    each NOT_READY of a break carries its reason, every other agent event none."""
    sim = Simulation(replace(CONFIG, shifts=SHIFTS), seed=3, start=START, duration_s=14 * 3600)
    codec = Codec.pinned()
    seen: dict[object, int] = defaultdict(int)
    for batch in sim.batches():
        for item in batch:
            if item[2] != AGENT:
                continue
            topic, _key, value = sim.encoder.parts(item)
            event = codec.decode(topic, value)
            expected = item[5] if item[4] is AgentState.NOT_READY and isinstance(item[5], str) else None
            assert (event.state, event.reason) == (item[4], expected), item
            seen[event.reason] += 1
    assert seen["BREAK"] == 3 and seen["LUNCH"] == 2 and seen[None] > 10
