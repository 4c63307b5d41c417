"""Agents follow a staffing plan's shifts (``SimConfig.shifts``) instead of the simulator's own plan.

Each ``ShiftAssignment`` of ``agents`` agents is a cohort of that many individual agents.
At every 15-minute staffing step a cohort's wanted status is OFF (outside its shift), ON
(on shift) or on a break with the break's reason, and the cohort moves there:

- OFF -> ON: the agents log in (``LOGGED_IN``, ``READY``); ids are reused as the
  simulator's own shifts do.
- ON -> break: idle agents go ``NOT_READY`` with the reason (BREAK, LUNCH) at once; an
  agent busy at the break's start takes no new contact and goes ``NOT_READY`` when its
  contacts end (``Agent.leaving`` holds the reason meanwhile), as in real life. Its break
  still ends on time.
- break -> ON: ``READY`` again (an agent still finishing its pre-break contacts simply
  stays on).
- -> OFF: idle agents log out (``NOT_READY``, ``LOGGED_OUT``; from a break only
  ``LOGGED_OUT``); busy ones finish their contacts first.

The break's reason travels in the raw item (``b`` of the agent item) and goes on the wire as
the agent event's ``reason`` (cc.agent.events schema 104; docs/planning.md).

Rules (docs/planning.md, "Proof in the digital twin"):

- A region with at least one shift in the plan follows the plan on every channel it
  simulates: a channel without shifts there gets nobody. Regions without shifts keep the
  simulator's own Erlang staffing.
- MESSENGER shifts staff the ``messenger`` queue. The WeChat queue (``messenger-zh``,
  Chinese-speaking agents, a second skill the plan's one-skill-per-channel vocabulary
  cannot express) keeps the simulator's own staffing in every region.
- Shift and break boundaries must lie on 15-minute boundaries (the staffing step);
  anything else is refused with the offending value.
- Agents on a break stay logged in: ``QueueState.staffed`` counts them, ``ready`` does not.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from streams.domain.events import AgentState, Channel
from streams.simulator.config import DEFAULT_CHANNELS, SimConfig, TwinShrinkage
from streams.simulator.floor import Floor, new_agent
from streams.simulator.model import AGENT, Agent, QueueState

if TYPE_CHECKING:
    from streams.domain.shift_plan import ShiftAssignment

STEP_MS = 900_000  # the engine's staffing step
OFF, ON = "OFF", "ON"  # cohort statuses; a break's reason (BREAK, LUNCH) is the third kind
OFFLINE = "OFFLINE"  # the NOT_READY reason of an agent off the phones (TwinShrinkage.offline)


class Cohort:
    __slots__ = ("shift", "members", "status", "offline", "seed", "_rng")

    def __init__(self, shift: ShiftAssignment, seed: int = 0) -> None:
        self.shift = shift
        self.members: list[Agent] = []
        self.status = OFF
        self.offline: set[int] = set()  # indices of members off the phones this interval
        self.seed = seed
        self._rng: np.random.Generator | None = None

    @property
    def rng(self) -> np.random.Generator:
        """Draws of its own (absence, offline), keyed by the run's seed and the shift: the same
        for a region whichever other regions run with it, none taken from the engine's; made on
        first use (an adherent run never draws)."""
        if self._rng is None:
            s = self.shift
            key = f"{s.region}|{s.channel}|{s.variant_id}|{s.start_ms}"
            self._rng = np.random.default_rng([self.seed, 3, zlib.crc32(key.encode())])
        return self._rng

    def wanted(self, t: int) -> str:
        s = self.shift
        if not s.start_ms <= t < s.end_ms:
            return OFF
        return next((b.reason for b in s.breaks if b.start_ms <= t < b.end_ms), ON)


def _check_aligned(shift: ShiftAssignment) -> None:
    for name, value in [("start", shift.start_ms), ("end", shift.end_ms)] + [
        (f"{b.reason} break boundary", v) for b in shift.breaks for v in (b.start_ms, b.end_ms)
    ]:
        if value % STEP_MS:
            msg = (
                f"shift {shift.variant_id} of {shift.region} {shift.channel}: {name} {value} is not on a "
                "15-minute boundary (the twin staffs every 15 minutes)"
            )
            raise ValueError(msg)


class ShiftFollower:
    """Cohorts per (region, queue) of the simulated regions in the plan."""

    def __init__(
        self, config: SimConfig, shifts: Iterable[ShiftAssignment], simulated: set[str], seed: int = 0
    ) -> None:
        self.shrinkage = config.shrinkage or TwinShrinkage()
        self.cohorts: dict[tuple[str, str], list[Cohort]] = {}
        self.regions: set[str] = set()
        for shift in shifts:
            if shift.region not in simulated:
                continue
            _check_aligned(shift)
            self.regions.add(shift.region)
            channel = Channel(shift.channel)
            if channel not in config.channels or shift.agents == 0:
                continue  # a channel not simulated has no queue; the region still follows the plan
            queue = config.channels[channel].queue
            self.cohorts.setdefault((shift.region, queue), []).append(Cohort(shift, seed))
        for cohorts in self.cohorts.values():
            cohorts.sort(key=lambda c: (c.shift.start_ms, c.shift.end_ms, c.shift.variant_id))
        self._queues = {p.queue for p in DEFAULT_CHANNELS.values()}

    def covers(self, region: str, queue: str) -> bool:
        """True when the plan staffs this queue (the WeChat queue never: see the module doc)."""
        return region in self.regions and queue in self._queues

    def apply(self, engine: Floor, t: int) -> None:
        for (region, name), cohorts in self.cohorts.items():
            queue = engine.queue_of(region, name)
            for cohort in cohorts:
                wanted = cohort.wanted(t)
                if wanted != cohort.status:
                    _move(engine, queue, cohort, wanted, t, self.shrinkage.absence)
                if cohort.status == ON and self.shrinkage.offline > 0:
                    _offline_step(engine, queue, cohort, self.shrinkage.offline, t)
            engine.serve_waiting(queue, t)


def _offline_step(engine: Floor, queue: QueueState, cohort: Cohort, share: float, t: int) -> None:
    """Each present member is off the phones this interval with probability ``share``."""
    off = cohort.rng.random(len(cohort.members)) < share
    for i, agent in enumerate(cohort.members):
        if off[i] and i not in cohort.offline:
            cohort.offline.add(i)
            _go_on_break(engine, queue, agent, OFFLINE, t)
        elif not off[i] and i in cohort.offline:
            cohort.offline.discard(i)
            _back_from_break(engine, queue, agent, t)


def _move(engine: Floor, queue: QueueState, cohort: Cohort, wanted: str, t: int, absence: float) -> None:
    was, cohort.status = cohort.status, wanted
    offline, cohort.offline = cohort.offline, set()
    if was == OFF:
        present = cohort.shift.agents
        if absence > 0:  # the absent never log in for this shift
            present -= int(np.count_nonzero(cohort.rng.random(present) < absence))
        cohort.members = [_log_in(engine, queue, t) for _ in range(present)]
        if wanted != ON:  # the run starts inside a break of this shift
            for agent in cohort.members:
                _go_on_break(engine, queue, agent, wanted, t)
        return
    for i, agent in enumerate(cohort.members):
        if wanted == OFF:
            _log_off(engine, queue, agent, on_break=was != ON or i in offline, t=t)
        elif wanted == ON:
            _back_from_break(engine, queue, agent, t)
        elif was == ON:
            _go_on_break(engine, queue, agent, wanted, t)
        elif agent.leaving:  # one break straight after another: still finishing a contact
            agent.leaving = wanted
        else:
            engine.emit(t, AGENT, agent, AgentState.NOT_READY, wanted)
    if wanted == OFF:
        cohort.members = []


def _log_in(engine: Floor, queue: QueueState, t: int) -> Agent:
    agent = queue.spare.pop() if queue.spare else new_agent(engine, queue)
    agent.logged_in, agent.busy, agent.leaving = True, 0, False
    queue.staffed.append(agent)
    engine.emit(t, AGENT, agent, AgentState.LOGGED_IN)
    engine.emit(t, AGENT, agent, AgentState.READY)
    queue.ready.append(agent)
    agent.in_ready = True
    return agent


def _not_ready_for_contacts(queue: QueueState, agent: Agent) -> None:
    if agent.in_ready:
        queue.ready.remove(agent)
        agent.in_ready = False


def _go_on_break(engine: Floor, queue: QueueState, agent: Agent, reason: str, t: int) -> None:
    _not_ready_for_contacts(queue, agent)
    if agent.busy:
        agent.leaving = reason  # NOT_READY with the reason when its contacts end (shifts.leave)
    else:
        engine.emit(t, AGENT, agent, AgentState.NOT_READY, reason)


def _back_from_break(engine: Floor, queue: QueueState, agent: Agent, t: int) -> None:
    if agent.leaving:  # still on its pre-break contacts: it just stays
        agent.leaving = False
    else:
        engine.emit(t, AGENT, agent, AgentState.READY)
    if agent.busy < agent.concurrency and not agent.in_ready:
        queue.ready.append(agent)
        agent.in_ready = True


def _log_off(engine: Floor, queue: QueueState, agent: Agent, on_break: bool, t: int) -> None:
    queue.staffed.remove(agent)
    _not_ready_for_contacts(queue, agent)
    if agent.busy:
        agent.leaving = True  # logs out when its contacts end (Engine._release)
    elif on_break:
        agent.logged_in = agent.leaving = False
        engine.emit(t, AGENT, agent, AgentState.LOGGED_OUT)
        queue.spare.append(agent)
    else:
        engine.log_out(agent, queue, t)
