"""The discrete-event engine: arrivals in, raw items out in event-time order.

One clock (epoch ms), one heap of timed steps (abandon, hold start/end, talk end, ACW
end, survey, staffing). Arrivals come from ``ArrivalModel`` hour by hour and are
merged with the heap. Queues are FIFO per region x queue; an agent with a free slot
takes the oldest waiting contact. The engine draws no random numbers: every random
value comes with the arrival, so the output is a pure function of (config, seed,
start, end, routing policy).
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from streams.domain.events import AgentState, Channel, ContactEventType, Resolution
from streams.domain.regions import Region
from streams.simulator.arrivals import HOUR_MS, ArrivalChunk, ArrivalModel
from streams.simulator.config import (
    ZH_QUEUE,
    SimConfig,
)
from streams.simulator.contacts import ContactMaker
from streams.simulator.model import (
    AGENT,
    CONTACT,
    SURVEY,
    Agent,
    Contact,
    QueueState,
    RawItem,
    RoutingPolicy,
    Target,
)
from streams.simulator.shapes import overflow_candidates
from streams.simulator.shifts import apply_staffing, leave
from streams.simulator.staffing import INTERVAL_MS, StaffingPlan

_ABANDON, _HOLD_START, _HOLD_END, _TALK_END, _ACW_END, _SURVEY, _STAFF, _TRANSFER, _CLOSE = range(9)
_T = ContactEventType
_BATCH = 2048
MAX_DRAIN_MS = 2 * 86_400_000  # longest the run goes on after the last arrival


@dataclass
class Truth:
    """The simulator's own bookkeeping per (handling region, channel): ground truth for tests.
    Contacts answered without a queue (``Contact.direct``) are neither offered nor answered,
    and an ENDED after ABANDONED adds nothing (DESIGN section 3, R5)."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    answered_within_target: int = 0
    wait_ms_answered: int = 0


class Engine(ContactMaker):
    def __init__(
        self, config: SimConfig, regions: tuple[Region, ...], seed: int, routing: RoutingPolicy
    ) -> None:
        self.config, self.regions, self.seed, self.routing = config, regions, seed, routing
        self.model = ArrivalModel(config, regions, seed)
        self.plan = StaffingPlan(self.model)
        self.queues: dict[tuple[str, str], QueueState] = {}
        self.truth: dict[tuple[str, Channel], Truth] = defaultdict(Truth)
        self._heap: list[tuple[int, int, int, object]] = []
        self._next_seq = itertools.count(1).__next__  # heap tie-break: first scheduled, first done
        self._next_no = itertools.count(1).__next__  # event numbers: the tail of each event_id
        self.out: list[RawItem] = []
        self.end_ms: int | None = None
        self.agent_count: dict[tuple[str, str], int] = defaultdict(int)
        self.active = 0  # contacts not yet finished (waiting, in service or awaiting a survey)
        self._init_contacts(config, regions, self.model.channels)
        self._simulated = frozenset(r.code for r in regions)
        self._overflow_to = overflow_candidates(tuple(r.code for r in regions))

    @property
    def contacts(self) -> int:
        """Contacts that arrived so far."""
        return self._contacts

    # -- QueueView for routing policies ---------------------------------------------

    def waiting(self, region: str, queue: str) -> int:
        q = self.queues.get((region, queue))
        return 0 if q is None else q.n_waiting

    def staffed(self, region: str, queue: str) -> int:
        q = self.queues.get((region, queue))
        return 0 if q is None else len(q.staffed)

    def ready(self, region: str, queue: str) -> int:
        q = self.queues.get((region, queue))
        return 0 if q is None else len(q.ready)

    # -- main loop ----------------------------------------------------------------------

    def run(self, start_ms: int, end_ms: int) -> Iterator[list[RawItem]]:
        """Batches of raw items in event-time order: arrivals in [start, end), then the
        contacts still in the system run to completion."""
        if start_ms % HOUR_MS:
            msg = f"start_ms={start_ms} is not on a whole UTC hour"
            raise ValueError(msg)
        self._push(start_ms, _STAFF, None)
        heap = self._heap
        for hour in range(start_ms, end_ms, HOUR_MS):
            chunk = self.model.chunk(hour)
            times = chunk.time_ms
            for i in range(len(times)):
                t = times[i]
                if t >= end_ms:
                    break
                while heap and heap[0][0] <= t:
                    self._step(heapq.heappop(heap))
                self._arrive(chunk, i, t)
                if len(self.out) >= _BATCH:
                    yield self._take()
        self.end_ms = now = end_ms
        while heap:
            entry = heapq.heappop(heap)
            now = max(now, entry[0])
            self._step(entry)
            if len(self.out) >= _BATCH:
                yield self._take()
        self._log_out_all(now)
        if self.out:
            yield self._take()

    def _take(self) -> list[RawItem]:
        out, self.out = self.out, []
        return out

    def _push(self, t: int, kind: int, subject: object) -> None:
        heapq.heappush(self._heap, (t, self._next_seq(), kind, subject))

    def emit(self, t: int, kind: int, subject: object, a: object, b: object = None) -> None:
        self.out.append((t, self._next_no(), kind, subject, a, b))

    def _step(self, entry: tuple[int, int, int, object]) -> None:
        t, _, kind, subject = entry
        if kind == _STAFF:
            self._staff(t)
            return
        contact: Contact = subject  # type: ignore[assignment]
        if kind == _TALK_END:  # most frequent first
            self._talk_end(contact, t)
        elif kind == _ACW_END:
            self._acw_end(contact, t)
        elif kind == _ABANDON:
            if contact.state == Contact.WAITING:
                self._abandon(contact, t)
        elif kind == _HOLD_START:
            self.emit(t, CONTACT, contact, _T.HOLD_STARTED, contact.agent.ref)  # type: ignore[union-attr]
            if not contact.end_on_hold:
                self._push(t + int(contact.talk_ms * 0.2), _HOLD_END, contact)
        elif kind == _HOLD_END:
            self.emit(t, CONTACT, contact, _T.HOLD_ENDED, contact.agent.ref)  # type: ignore[union-attr]
        elif kind == _SURVEY:
            self._survey(contact, t)
        elif kind == _TRANSFER:
            self.emit(t, CONTACT, contact, _T.TRANSFERRED, contact.agent.ref)  # type: ignore[union-attr]
        elif kind == _CLOSE:  # the channel closes an abandoned contact (edge shape)
            self.emit(t, CONTACT, contact, _T.ENDED, (None, Resolution.UNRESOLVED))
            self.active -= 1

    # -- contacts -----------------------------------------------------------------------

    def _arrive(self, chunk: ArrivalChunk, i: int, t: int) -> None:
        contact = self._new_contact(chunk, i, t)
        self.active += 1
        append, next_no = self.out.append, self._next_no
        append((t, next_no(), CONTACT, contact, _T.ARRIVED, None))
        target = self.routing.route(contact, self)
        if self._edges and target.region == contact.home:
            target = self._forced_overflow(target, chunk.overflow_u[i])
        if target.region not in self._simulated:
            msg = f"routing sent {contact.contact_id} to {target.region!r}, not a simulated region"
            raise ValueError(msg)
        contact.region, contact.queue = target.region, target.queue
        queue = self.queue_of(target.region, target.queue)
        truth = contact.truth = self.truth[(contact.region, contact.channel)]
        if contact.direct:
            self._direct(contact, queue, t)
            return
        truth.offered += 1
        append((t, next_no(), CONTACT, contact, _T.QUEUED, None))
        if queue.ready and not queue.n_waiting:
            self._answer(contact, queue, queue.ready[0], t)
            return
        queue.waiting.append(contact)
        queue.n_waiting += 1
        if contact.patience_ms >= 0:
            self._push(t + contact.patience_ms, _ABANDON, contact)

    # -- edge shapes (SimConfig.EDGE_SHAPES; off by default) ----------------------------

    def _forced_overflow(self, target: Target, u: float) -> Target:
        """Another simulated region with the same queue, for ``overflow_share`` of the contacts
        (u rescaled to [0, 1) picks it uniformly); else ``target`` unchanged."""
        share = self.config.overflow_share
        if u >= share:
            return target
        others = self._overflow_to.get((target.region, target.queue == ZH_QUEUE), ())
        return Target(others[int(u / share * len(others))], target.queue) if others else target

    def _direct(self, contact: Contact, queue: QueueState, t: int) -> None:
        """No QUEUED event: a free agent answers at once; with none free the contact waits its
        turn unseen (the next free agent makes the callback) and never abandons."""
        if queue.ready and not queue.n_waiting:
            self._answer(contact, queue, queue.ready[0], t)
            return
        queue.waiting.append(contact)
        queue.n_waiting += 1

    def queue_of(self, region: str, name: str) -> QueueState:
        queue = self.queues.get((region, name))
        if queue is None:
            queue = self.queues[(region, name)] = QueueState(region, name)
        return queue

    def _answer(self, contact: Contact, queue: QueueState, agent: Agent, t: int) -> None:
        agent.busy += 1
        ready = queue.ready
        if agent.busy >= agent.concurrency:
            ready.popleft()
            agent.in_ready = False
        elif len(ready) > 1:
            ready.rotate(-1)  # spread multi-contact work across agents
        contact.state, contact.agent, contact.answered_ms = Contact.ANSWERED, agent, t
        append, next_no, ref = self.out.append, self._next_no, agent.ref
        append((t, next_no(), CONTACT, contact, _T.OFFERED, ref))
        append((t, next_no(), CONTACT, contact, _T.ANSWERED, ref))
        if agent.busy == 1:
            append((t, next_no(), AGENT, agent, AgentState.ON_CONTACT, None))
        if not contact.direct:  # a contact answered without a queue is not "answered" (R5b)
            truth = contact.truth
            wait = t - contact.arrived_ms
            truth.answered += 1
            truth.wait_ms_answered += wait
            if wait <= contact.target_ms:
                truth.answered_within_target += 1
        if contact.hold_at >= 0:
            self._push(t + int(contact.talk_ms * contact.hold_at), _HOLD_START, contact)
        if contact.transfer_at >= 0:
            self._push(t + int(contact.talk_ms * contact.transfer_at), _TRANSFER, contact)
            if contact.second_transfer_at >= 0:
                self._push(t + int(contact.talk_ms * contact.second_transfer_at), _TRANSFER, contact)
        self._push(t + contact.talk_ms, _TALK_END, contact)

    def _abandon(self, contact: Contact, t: int) -> None:
        contact.state = Contact.ABANDONED
        self.queue_of(contact.region, contact.queue).n_waiting -= 1
        contact.truth.abandoned += 1
        self.emit(t, CONTACT, contact, _T.ABANDONED, None)
        if contact.abandon_end_ms >= 0:
            self._push(t + contact.abandon_end_ms, _CLOSE, contact)
        else:
            self.active -= 1

    def _talk_end(self, contact: Contact, t: int) -> None:
        cfg, u = self.config, contact.outcome_u
        agent = contact.agent
        assert agent is not None
        flr = cfg.first_line_resolution
        if u < flr:
            resolution = Resolution.RESOLVED_FIRST_LINE
        elif (u - flr) / (1.0 - flr) < cfg.escalated_share_of_rest:
            resolution = Resolution.ESCALATED_SECOND_LINE
            self.emit(t, CONTACT, contact, _T.ESCALATED, agent.ref)
        else:
            resolution = Resolution.UNRESOLVED
        append, next_no = self.out.append, self._next_no
        append((t, next_no(), CONTACT, contact, _T.ENDED, (agent.agent_id, resolution)))
        if agent.concurrency == 1:
            append((t, next_no(), AGENT, agent, AgentState.ACW, None))
        self._push(contact.answered_ms + max(contact.handle_ms, contact.talk_ms), _ACW_END, contact)

    def _acw_end(self, contact: Contact, t: int) -> None:
        agent = contact.agent
        assert agent is not None
        self.emit(t, CONTACT, contact, _T.ACW_ENDED, agent.ref)
        if contact.survey_u < self.config.survey_share:
            self._push(t + contact.survey_delay_ms, _SURVEY, contact)
        else:
            self.active -= 1
        agent.busy -= 1
        self._release(agent, t)

    def _survey(self, contact: Contact, t: int) -> None:
        u = contact.score_u
        score = 5
        for value, p in enumerate(self.config.scores, start=1):
            u -= p
            if u < 0:
                score = value
                break
        self.emit(t, SURVEY, contact, score)
        self.active -= 1

    # -- agents -------------------------------------------------------------------------

    def _release(self, agent: Agent, t: int) -> None:
        """An agent finished a contact: log out if leaving, else take the next waiting one."""
        queue = agent.queue_state
        if agent.leaving:
            if agent.busy == 0:
                leave(self, agent, queue, t)
            return
        if agent.busy == 0:
            self.emit(t, AGENT, agent, AgentState.READY)
        if not agent.in_ready:
            queue.ready.append(agent)
            agent.in_ready = True
        self.serve_waiting(queue, t)

    def serve_waiting(self, queue: QueueState, t: int) -> None:
        while queue.ready and queue.n_waiting:
            contact = queue.next_contact()
            if contact is None:
                break
            queue.n_waiting -= 1
            self._answer(contact, queue, queue.ready[0], t)

    def log_out(self, agent: Agent, queue: QueueState, t: int) -> None:
        agent.logged_in = agent.leaving = False
        self.emit(t, AGENT, agent, AgentState.NOT_READY)
        self.emit(t, AGENT, agent, AgentState.LOGGED_OUT)
        queue.spare.append(agent)

    def _log_out_all(self, t: int) -> None:
        for queue in self.queues.values():
            for agent in list(queue.staffed):
                self.log_out(agent, queue, t)
            queue.staffed.clear()
            queue.ready.clear()

    def _staff(self, t: int) -> None:
        if (
            self.end_ms is not None
            and t >= self.end_ms
            and (self.active == 0 or t >= self.end_ms + MAX_DRAIN_MS)
        ):
            # the run is over; after MAX_DRAIN_MS, contacts a routing policy left in an unstaffed
            # queue stay unfinished rather than the run going on for ever
            return
        apply_staffing(self, self.plan, t)
        self._push(t + INTERVAL_MS, _STAFF, None)
