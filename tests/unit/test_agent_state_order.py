"""An agent's current state in the KPI view: last writer by event time wins, events of the same
millisecond apply in stream order, a duplicate never applies twice.

Until 2026-12-01 the first event of a millisecond stuck: an agent that logged out (NOT_READY
then LOGGED_OUT at one instant) stayed NOT_READY and staffed for good, a shift start stayed
LOGGED_IN, and a contact answered at the instant its agent became READY left the agent READY,
its talk time counted as ready time. The simulator streams here are the truth: folded through
``apply_agent``, every agent ends in the state the simulator last emitted for it."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams.domain.events import AgentEvent, AgentState
from streams.domain.shift_plan import Break, ShiftAssignment
from streams.jobs import kpi_apply as kpi
from streams.jobs.queues import staffed_agents
from streams.jobs.state import PartitionState, dumps, loads
from streams.simulator import SimConfig, run
from streams.simulator.config import Faults, TwinShrinkage
from streams.wire.codec import Codec
from streams.wire.record_file import read_records
from streams.wire.topics import AGENT_TOPIC

pytestmark = pytest.mark.unit

T0 = 1_795_399_200_000  # 2026-11-23 02:00 UTC: the twin starts shifts on 15-minute boundaries
H, Q = 3_600_000, 900_000
S = AgentState


def event(n: int, state: AgentState, t: int, reason: str | None = None) -> AgentEvent:
    return AgentEvent(f"e{n}", "ag1", "RU-KGD", state, t, ("general",), ("ru",), 1, reason)


def fold(events: list[AgentEvent], state: PartitionState | None = None) -> PartitionState:
    state = state or PartitionState(0)
    for e in events:
        kpi.apply_agent(state, e)
    return state


@pytest.mark.parametrize(
    ("sequence", "final"),
    [
        ([S.LOGGED_IN, S.READY], "READY"),  # a shift start
        ([S.READY, S.ON_CONTACT], "ON_CONTACT"),  # a waiting contact answered at once
        ([S.NOT_READY, S.LOGGED_OUT], "LOGGED_OUT"),  # a log-out
        ([S.LOGGED_OUT, S.LOGGED_IN, S.READY], "READY"),  # one shift ends as the next starts (the twin)
    ],
)
def test_events_of_one_millisecond_apply_in_stream_order(sequence: list[AgentState], final: str) -> None:
    state = fold([event(n, s, T0) for n, s in enumerate(sequence)])
    assert state.agents["ag1"].state == final


def test_a_duplicate_of_the_same_millisecond_does_not_apply_again() -> None:
    events = [event(1, S.READY, T0), event(2, S.ON_CONTACT, T0)]
    state = fold([*events, events[0]])  # READY again: the duplicate, not a new READY
    assert state.agents["ag1"].state == "ON_CONTACT"
    restored = loads(dumps(state))  # the ids survive a checkpoint: a duplicate after a restore too
    assert fold([events[0], events[1]], restored).agents["ag1"].state == "ON_CONTACT"
    assert fold([event(0, S.NOT_READY, T0 - 1)], restored).agents["ag1"].state == "ON_CONTACT"  # older


def test_talk_answered_at_the_ready_instant_counts_as_on_contact_time() -> None:
    state = fold([event(1, S.READY, T0), event(2, S.ON_CONTACT, T0), event(3, S.ACW, T0 + 50_000)])
    minute = (T0 + 50_000) - (T0 + 50_000) % 60_000
    assert state.agent_minutes[("RU-KGD", minute)] == {"ready_ms": 0, "on_contact_ms": 50_000, "acw_ms": 0}


def last_emitted(path: Path, codec: Codec) -> tuple[list[AgentEvent], dict[str, str]]:
    """The agent events in stream order, and each agent's state as the simulator last emitted it."""
    events = [codec.decode(r.topic, r.value) for r in read_records(path) if r.topic == AGENT_TOPIC]
    agents = [e for e in events if isinstance(e, AgentEvent)]
    last: dict[str, AgentEvent] = {}
    for e in agents:
        if e.agent_id not in last or e.event_time_ms >= last[e.agent_id].event_time_ms:
            last[e.agent_id] = e
    return agents, {a: e.state.value for a, e in last.items()}


def twin_plan() -> SimConfig:
    """Back-to-back hourly voice shifts (the same agents log out and in at one instant), two-hour
    chat shifts with a lunch, agents absent or offline."""
    shifts = []
    for k in range(5):
        start = T0 + k * H
        for channel, hours, reason in (("VOICE", 1, "BREAK"), ("CHAT", 2, "LUNCH")):
            away = (Break(start + Q, start + 2 * Q, reason),)
            shifts.append(ShiftAssignment("RU-KGD", channel, "a", start, start + hours * H, 3, away))
    return SimConfig(shifts=tuple(shifts), shrinkage=TwinShrinkage(absence=0.1, offline=0.3))


@pytest.mark.parametrize("planned", [False, True], ids=["simulator staffing", "twin with a plan"])
def test_every_agent_ends_as_the_simulator_last_emitted_it(tmp_path: Path, planned: bool) -> None:
    codec = Codec.pinned()
    config = twin_plan() if planned else SimConfig()
    start = datetime.fromtimestamp(T0 / 1000, UTC)
    clean, faulty = tmp_path / "clean.bin", tmp_path / "dup.bin"
    for path, faults in ((clean, None), (faulty, Faults(duplicate=0.05))):
        run(regions=["RU-KGD"], duration_s=7 * 3600, seed=5, out="file", path=path, start=start,
            config=replace(config), faults=faults)  # fmt: skip
    events, truth = last_emitted(clean, codec)
    same_ms = Counter(
        (a.state.value, b.state.value)
        for a, b in zip(events, events[1:], strict=False)
        if a.agent_id == b.agent_id and a.event_time_ms == b.event_time_ms
    )
    assert same_ms[("READY", "ON_CONTACT")] > 0  # the instants this test is about do occur
    if planned:
        assert same_ms[("LOGGED_OUT", "LOGGED_IN")] > 0
    for path in (clean, faulty):  # with 5 % duplicates: the same final states
        agents, _ = last_emitted(path, codec)
        state = fold(agents)
        assert {a: v.state for a, v in state.agents.items()} == truth
    on_floor = sum(staffed_agents(state).values())
    assert on_floor == sum(1 for s in truth.values() if s != "LOGGED_OUT")
