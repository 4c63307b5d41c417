"""What staffing code may do to the simulated floor: the part of ``Engine`` that shifts.py
(staffing curves) and planned.py (shift plans) use, and how a new agent is made.

A Protocol so that neither imports the engine (which imports both): the engine is the
one implementation, checked by mypy where it passes itself in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from streams.domain.regions import Region
from streams.simulator.arrivals import ArrivalModel
from streams.simulator.config import ZH_QUEUE, SimConfig
from streams.simulator.model import Agent, QueueState


class Floor(Protocol):
    @property
    def config(self) -> SimConfig: ...

    @property
    def regions(self) -> Sequence[Region]: ...

    @property
    def model(self) -> ArrivalModel: ...

    @property
    def agent_count(self) -> dict[tuple[str, str], int]: ...

    def queue_of(self, region: str, name: str) -> QueueState: ...

    def emit(self, t: int, kind: int, subject: object, a: object, b: object = None) -> None: ...

    def serve_waiting(self, queue: QueueState, t: int) -> None: ...

    def log_out(self, agent: Agent, queue: QueueState, t: int) -> None: ...


def new_agent(floor: Floor, queue: QueueState) -> Agent:
    """A new agent of ``queue``, numbered per region and queue."""
    key = (queue.region, queue.name)
    floor.agent_count[key] += 1
    channel_queue = "messenger" if queue.name == ZH_QUEUE else queue.name
    params = next(p for p in floor.config.channels.values() if p.queue == channel_queue)
    languages = ("ru", "zh") if queue.name == ZH_QUEUE else ("ru",)
    agent_id = f"a-{queue.region[3:].lower()}-{queue.name}-{floor.agent_count[key]:04d}"
    return Agent(agent_id, queue, languages, params.concurrency)
