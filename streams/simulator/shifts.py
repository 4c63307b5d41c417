"""Shifts: at each 15-minute boundary, log agents in or out so each queue has the planned number.

Idle agents leave first (NOT_READY then LOGGED_OUT); busy ones finish their contacts
and then leave. Agents who log in again reuse their earlier ids, so an agent's day
shows as several shifts of one agent. With a plan of shifts (``SimConfig.shifts``) the
regions in the plan follow it instead (streams/simulator/planned.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from streams.domain.events import AgentState
from streams.simulator.floor import Floor, new_agent
from streams.simulator.model import AGENT, Agent, QueueState

if TYPE_CHECKING:
    from streams.simulator.staffing import StaffingPlan


def apply_staffing(engine: Floor, plan: StaffingPlan, t: int) -> None:
    offsets = engine.model.offsets_s(t)
    follower = plan.follower
    if follower is not None:
        follower.apply(engine, t)
    factors: Mapping[str, float] = engine.config.staffing_factors or {}
    for index, region in enumerate(engine.regions):
        factor = factors.get(region.code, 1.0)
        for name in plan.queues_of(index):
            if follower is not None and follower.covers(region.code, name):
                continue
            target = plan.agents(index, name, t, offsets[index])
            if factor != 1.0:
                target = max(0, round(target * factor))
            queue = engine.queue_of(region.code, name)
            if target > len(queue.staffed):
                _log_in(engine, queue, target - len(queue.staffed), t)
            elif target < len(queue.staffed):
                _release_agents(engine, queue, len(queue.staffed) - target, t)


def _log_in(engine: Floor, queue: QueueState, count: int, t: int) -> None:
    for _ in range(count):
        agent = queue.spare.pop() if queue.spare else new_agent(engine, queue)
        agent.logged_in, agent.busy = True, 0
        queue.staffed.append(agent)
        engine.emit(t, AGENT, agent, AgentState.LOGGED_IN)
        engine.emit(t, AGENT, agent, AgentState.READY)
        queue.ready.append(agent)
        agent.in_ready = True
    engine.serve_waiting(queue, t)


def _release_agents(engine: Floor, queue: QueueState, count: int, t: int) -> None:
    idle = [agent for agent in queue.staffed if agent.busy == 0][:count]
    for agent in idle:
        queue.staffed.remove(agent)
        queue.ready.remove(agent)
        agent.in_ready = False
        engine.log_out(agent, queue, t)
    remaining = count - len(idle)
    if remaining <= 0:
        return
    for agent in queue.staffed[-remaining:]:
        agent.leaving = True  # logs out once its contacts end (Engine._release)
        if agent.in_ready:
            queue.ready.remove(agent)
            agent.in_ready = False
    del queue.staffed[-remaining:]


def leave(engine: Floor, agent: Agent, queue: QueueState, t: int) -> None:
    """A leaving agent's last contact ended: log out (``leaving`` is True) or start the
    break it was waiting for (``leaving`` is the break's reason; planned.py)."""
    reason = agent.leaving
    if reason is True:
        engine.log_out(agent, queue, t)
        return
    agent.leaving = False
    engine.emit(t, AGENT, agent, AgentState.NOT_READY, reason)
