"""Routing in the worker: one decision per ARRIVED contact, as of the arrival's event time.

``GlobalQueueTable`` (streams/jobs/queue_table.py) holds every region's cc.queue.state
records: a short history per region|queue and each region's progress. ``Router`` decides an arrival from its
home queue as of t (streams/jobs/routing_local.py) and, for the other candidates, the
latest record at or before t, once the inputs up to t are in (or after a wall-clock
bound); it produces the decision to cc.routing.decisions keyed by contact_id and
remembers the predicted wait; ``on_answered`` observes actual minus predicted wait
(``ccpulse_ewt_error_seconds``). A contact overflowed to a region on another
partition is answered there, so its error is not observed (documented gap).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Producer

from streams.domain.events import Channel, ContactEvent
from streams.domain.routing import (
    EwtMethod,
    QueueSnapshot,
    RoutingDecision,
    RoutingParams,
    RoutingRequest,
    decide,
    estimate_wait,
    skill_queues,
)
from streams.jobs.queue_table import BOUNDARY_SIZE_HEADER as BOUNDARY_SIZE_HEADER
from streams.jobs.queue_table import GlobalQueueTable as GlobalQueueTable
from streams.jobs.queue_table import snapshot_of as snapshot_of
from streams.jobs.routing_local import capture, queue_record, region_has_agents
from streams.jobs.state import PartitionState
from streams.wire.codec import Codec
from streams.wire.topics import DECISIONS_TOPIC

log = logging.getLogger("ccpulse.jobs.routing")
_ANSWERED_FIRST = "ANSWERED"  # a prediction slot holding the answer time of a contact not decided yet


def decision_record(d: RoutingDecision) -> dict[str, Any]:
    return {
        "contact_id": d.contact_id, "event_id": d.event_id, "region": d.region,
        "target_region": d.target_region, "target_queue": d.target_queue, "language": d.language,
        "channel": d.channel.value, "priority": d.priority,
        "ewt_seconds": d.ewt_seconds, "ewt_method": d.ewt_method.value, "reason": d.reason.value,
        "candidates": [
            {"region": c.region, "queue": c.queue, "ewt_seconds": c.ewt_seconds, "method": c.method.value,
             "eligible": c.eligible, "note": c.note}
            for c in d.candidates
        ],
        "decided_at_ms": d.decided_at_ms, "policy_version": d.policy_version,
    }  # fmt: skip


class Router:
    """Decides each ARRIVED once, as of its event time (docs/routing.md, "In the worker").

    ``on_arrival`` captures what the decision needs from the contact stream and queues it on
    the partition (``pending_arrivals``, checkpointed); ``release`` decides the queued
    arrivals in order once the agent stream has passed their time (``agent_ready``) and every
    region's published state has (``regions``, else every region in the table: its progress), or
    after ``max_wait_s`` of wall time with what there is, saying so in the candidates' notes."""

    def __init__(
        self,
        table: GlobalQueueTable,
        codec: Codec,
        params: RoutingParams | None = None,
        observe: Callable[[str, Any], None] | None = None,
        max_wait_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        regions: frozenset[str] | None = None,
    ) -> None:
        self.table, self._codec = table, codec
        self.params = params or RoutingParams()
        self._observe = observe or (lambda _name, _value: None)
        self.max_wait_s, self._clock = max_wait_s, clock
        # the regions whose state a decision waits for: the operation's regions when configured,
        # else those the table knows (all that ever published, once it was read to its end)
        self.regions = regions
        self.decisions = self.duplicates = self.waited_out = 0
        self._ewt: dict[tuple[str, str], tuple[QueueSnapshot, tuple[float, EwtMethod]]] = {}

    def on_arrival(self, state: PartitionState, event: ContactEvent) -> None:
        cid = event.contact_id
        if cid in state.decided:
            self.duplicates += 1  # a re-delivered ARRIVED (15-60 min later, or a replay): decided once
            return
        request = [
            cid, event.event_id, event.region, event.queue, event.channel.value, event.language,
            event.priority, event.event_time_ms,
        ]  # fmt: skip
        captured = capture(state, [f"{event.region}|{event.queue}"])
        state.decided[cid] = event.event_time_ms  # decided (or pending, checkpointed with it) once
        state.pending_arrivals.append({"request": request, "capture": captured, "since": self._clock()})
        state.pending_ids[cid] = state.pending_ids.get(cid, 0) + 1

    def release(
        self,
        state: PartitionState,
        agent_ready: Callable[[int, float], bool],
        producer: Producer,
        on_delivery: Any,
    ) -> None:
        """Decide the partition's pending arrivals that can be decided, in order."""
        pending = state.pending_arrivals
        done = 0
        while done < len(pending):
            item = pending[done]
            waited = self._clock() - item.setdefault("since", self._clock())  # restored: waits anew
            out_of_time = waited >= self.max_wait_s
            agents_in = agent_ready(item["request"][-1], waited)
            if not agents_in and not out_of_time:
                break
            decision = self._decide(state, item, out_of_time, agents_in)
            if decision is None:
                break
            self._emit(state, decision, producer, on_delivery, waited)
            done += 1
        if done:
            ids = state.pending_ids
            for item in pending[:done]:
                cid = item["request"][0]
                if ids.get(cid, 0) > 1:
                    ids[cid] -= 1
                else:
                    ids.pop(cid, None)
            del pending[:done]

    def _decide(
        self, state: PartitionState, item: dict[str, Any], out_of_time: bool, agents_in: bool = True
    ) -> RoutingDecision | None:
        cid, eid, region, queue, channel, language, priority, t = item["request"]
        request = RoutingRequest(cid, eid, region, queue, Channel(channel), language, priority, t)
        sources: dict[tuple[str, str], QueueSnapshot] = {}
        remote, lagging = self.table.as_of(
            t, request.channel, skill_queues(request, self.params), self.regions, sources
        )
        lagging.discard(region)  # the home region's own queue is local, as of t
        if lagging and not out_of_time:
            return None
        queues = {k: q for k, q in remote.items() if k != (region, queue)}
        estimates = self._estimates(queues, sources)
        home = queue_record(state, item["capture"], f"{region}|{queue}", t)
        if home is not None and region_has_agents(state, region, t):
            queues[(region, queue)] = snapshot_of(home)
        notes = {}
        if not agents_in:  # the wall-clock bound passed before the agent stream reached t
            notes[(region, queue)] = (
                f"agent events not at t after {self.max_wait_s:g} s (decided without them)"
            )
        if lagging:
            self.waited_out += 1
            late = f"region state not at t after {self.max_wait_s:g} s (decided without it)"
            notes |= {k: late for k in queues if k[0] in lagging}
            for r in sorted(lagging - {k[0] for k in queues}):
                log.info("routing %s: no state of %s at t after %.0f s", cid, r, self.max_wait_s)
        return decide(request, queues, self.params, estimates, notes=notes)

    def _estimates(
        self, remote: dict[tuple[str, str], QueueSnapshot], sources: dict[tuple[str, str], QueueSnapshot]
    ) -> dict[tuple[str, str], tuple[float, EwtMethod]]:
        """``estimate_wait`` of each remote queue, computed once per record it was read from: a pure
        function of the params and the record's content but its ``as_of`` (a reading as of a later
        boundary has the same content); the table gives every decision the same record object
        until the queue's next record."""
        cache, estimates = self._ewt, {}
        for key, snapshot in remote.items():
            source = sources.get(key, snapshot)
            cached = cache.get(key)
            if cached is None or cached[0] is not source:
                cached = cache[key] = (source, estimate_wait(snapshot, self.params))
            estimates[key] = cached[1]
        return estimates

    def _emit(
        self,
        state: PartitionState,
        decision: RoutingDecision,
        producer: Producer,
        on_delivery: Any,
        waited: float,
    ) -> None:
        value = self._codec.encode(DECISIONS_TOPIC, decision_record(decision))
        producer.produce(DECISIONS_TOPIC, value, decision.contact_id.encode(), on_delivery=on_delivery)
        cid, method = decision.contact_id, decision.ewt_method.value
        answered = state.predictions.pop(cid, None)
        if answered is not None and answered[1] == _ANSWERED_FIRST:  # answered while the decision waited
            if method != "NONE":
                waited_s = (answered[2] - decision.decided_at_ms) / 1000
                self._observe("ewt_error", (decision.channel.value, method, waited_s - decision.ewt_seconds))
        else:
            state.predictions[cid] = (decision.ewt_seconds, method, decision.decided_at_ms)
        self.decisions += 1
        # latency from the ARRIVED being applied (or the pending decision restored) to the decision
        self._observe("routing_decision", (decision.reason.value, waited))

    def on_answered(self, state: PartitionState, event: ContactEvent) -> None:
        prediction = state.predictions.pop(event.contact_id, None)
        if prediction is None:
            if event.contact_id in state.pending_ids:  # its decision waits (pending_arrivals)
                state.predictions[event.contact_id] = (0.0, _ANSWERED_FIRST, event.event_time_ms)
            return
        ewt, method, arrived_ms = prediction
        if method != "NONE":
            actual = (event.event_time_ms - arrived_ms) / 1000
            self._observe("ewt_error", (event.channel.value, method, actual - ewt))
