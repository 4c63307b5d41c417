"""Mutable simulation entities (contacts, agents, queues), the raw output item and the routing hook.

The engine emits raw items, tuples ``(time_ms, event_no, kind, subject, a, b)``, rather
than domain events: building a frozen dataclass per event costs more than the whole
simulation step. ``streams.simulator.output`` turns raw items into the domain events
of ``streams.domain.events`` or, on the fast path, straight into Avro bytes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from streams.domain.events import Channel, Platform, Segment

# kinds of raw item: subject, a, b
CONTACT = 0  # Contact, ContactEventType, (agent_id, Resolution | None) | None
AGENT = 1  # Agent, AgentState, None
SURVEY = 2  # Contact, score, None
MALFORMED = 3  # topic, key bytes, (value bytes, fault kind)

RawItem = tuple[int, int, int, Any, Any, Any]


class Contact:
    __slots__ = (
        "contact_id", "channel", "platform", "language", "queue", "home_queue", "home", "region",
        "customer_ref", "segment", "priority", "reason_code", "arrived_ms", "handle_ms", "talk_ms",
        "patience_ms", "hold_at", "outcome_u", "survey_u", "survey_delay_ms", "score_u", "state", "agent",
        "answered_ms", "cache", "truth", "target_ms", "transfer_at", "second_transfer_at", "end_on_hold",
        "abandon_end_ms", "direct",
    )  # fmt: skip

    WAITING, ANSWERED, ABANDONED = 0, 1, 2

    def __init__(
        self,
        contact_id: str,
        channel: Channel,
        platform: Platform | None,
        language: str,
        queue: str,
        home: str,
        customer_ref: str,
        segment: Segment,
        priority: int,
        reason_code: str,
        arrived_ms: int,
    ) -> None:
        self.contact_id, self.channel, self.platform = contact_id, channel, platform
        self.language, self.queue, self.home_queue = language, queue, queue
        self.home, self.region = home, home
        self.customer_ref, self.segment, self.priority = customer_ref, segment, priority
        self.reason_code, self.arrived_ms = reason_code, arrived_ms
        self.handle_ms = self.talk_ms = self.patience_ms = 0
        self.hold_at = -1.0  # fraction of the talk time where a hold starts; < 0 = no hold
        self.transfer_at = -1.0  # fraction of the talk time where the agent transfers; < 0 = none
        # edge shapes (SimConfig.EDGE_SHAPES)
        self.second_transfer_at = -1.0  # a second TRANSFERRED at this fraction of the talk; < 0 = none
        self.end_on_hold = False  # a hold that the contact's ENDED closes (no HOLD_ENDED)
        self.abandon_end_ms = -1  # an ENDED (UNRESOLVED, no agent) this long after ABANDONED; < 0 = none
        self.direct = False  # answered by an agent without being QUEUED (a callback, a personal queue)
        self.outcome_u = self.survey_u = self.score_u = 0.0
        self.survey_delay_ms = 0
        self.state = Contact.WAITING
        self.agent: Agent | None = None
        self.answered_ms = -1
        self.cache: tuple[bytes, ...] | None = None  # encoded fields, filled by the encoder
        self.truth: Any = None  # the engine's ground-truth counters of its region x channel
        self.target_ms = 0.0  # answer-time threshold of its channel


class Agent:
    __slots__ = ("agent_id", "region", "queue", "skills", "languages", "concurrency", "busy", "leaving",
                 "logged_in", "in_ready", "cache", "ref", "queue_state")  # fmt: skip

    def __init__(
        self, agent_id: str, queue: QueueState, languages: tuple[str, ...], concurrency: int
    ) -> None:
        self.agent_id, self.region, self.queue = agent_id, queue.region, queue.name
        self.queue_state = queue
        self.skills: tuple[str, ...] = (queue.name,)
        self.languages, self.concurrency = languages, concurrency
        self.busy = 0
        self.logged_in = self.in_ready = False
        self.leaving: bool | str = False  # True: logs out when free; a reason: goes on that break
        self.cache: tuple[bytes, ...] | None = None
        self.ref = (agent_id, None)  # (agent_id, resolution) of the contact events it handles


class QueueState:
    """FIFO of waiting contacts (abandoned ones removed lazily) and agents with a free slot."""

    __slots__ = ("region", "name", "waiting", "n_waiting", "ready", "staffed", "spare")

    def __init__(self, region: str, name: str) -> None:
        self.region, self.name = region, name
        self.waiting: deque[Contact] = deque()
        self.n_waiting = 0
        self.ready: deque[Agent] = deque()
        self.staffed: list[Agent] = []  # logged in and not leaving
        self.spare: list[Agent] = []  # logged out, reused first (stable ids)

    def next_contact(self) -> Contact | None:
        waiting = self.waiting
        while waiting:
            contact = waiting.popleft()
            if contact.state == Contact.WAITING:
                return contact
        return None


@dataclass(frozen=True, slots=True)
class Target:
    region: str
    queue: str


class QueueView(Protocol):
    """What a routing policy may read of the simulated operation."""

    def waiting(self, region: str, queue: str) -> int: ...

    def staffed(self, region: str, queue: str) -> int: ...

    def ready(self, region: str, queue: str) -> int: ...


class RoutingPolicy(Protocol):
    def route(self, contact: Contact, state: QueueView) -> Target: ...


class HomeRegion:
    """Default policy: every contact waits in its home region's queue for its skill."""

    def route(self, contact: Contact, state: QueueView) -> Target:
        return Target(contact.home, contact.home_queue)
