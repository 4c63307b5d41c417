"""Routing in the worker: one decision per ARRIVED contact, as of the arrival's event time.

``GlobalQueueTable`` reads every partition of cc.queue.state in a thread (no consumer
group: every worker sees every region), keeps a short history of records per
region|queue and each region's progress. ``Router`` decides an arrival from its
home queue as of t (streams/jobs/routing_local.py) and, for the other candidates, the
latest record at or before t, once the inputs up to t are in (or after a wall-clock
bound); it produces the decision to cc.routing.decisions keyed by contact_id and
remembers the predicted wait; ``on_answered`` observes actual minus predicted wait
(``ccpulse_ewt_error_seconds``). A contact overflowed to a region on another
partition is answered there, so its error is not observed (documented gap).
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from streams.domain.errors import InvalidEvent
from streams.domain.events import Channel, ContactEvent
from streams.domain.routing import (
    QueueSnapshot,
    RoutingDecision,
    RoutingParams,
    RoutingRequest,
    decide,
    skill_queues,
)
from streams.engine import clients
from streams.engine.read_to_end import watermarks
from streams.jobs.routing_local import capture, queue_record, region_has_agents
from streams.jobs.state import PartitionState
from streams.wire.codec import Codec
from streams.wire.topics import DECISIONS_TOPIC, QUEUE_STATE_TOPIC

log = logging.getLogger("ccpulse.jobs.routing")
_ANSWERED_FIRST = "ANSWERED"  # a prediction slot holding the answer time of a contact not decided yet


def snapshot_of(record: dict[str, Any]) -> QueueSnapshot:
    r = record
    return QueueSnapshot(
        r["region"], r["queue"], Channel(r["channel"]), frozenset(r["languages"]), r["contacts_in_queue"],
        r["agents_logged_in"], r["agents_ready"], r["free_chat_slots"], r["aht_seconds"],
        r["arrival_rate_per_s"], r["abandon_rate_per_s"], r["as_of_ms"],
    )  # fmt: skip


BOUNDARY_SIZE_HEADER = "ccpulse-boundary-size"  # records of the region published for the same as_of


class GlobalQueueTable:
    """Every region's cc.queue.state records, kept as a short history per queue (records are
    published at event-time boundaries), and each region's progress: the newest as_of whose
    records are all in. A record's ``ccpulse-boundary-size`` header says how many records its
    region published for that as_of (a record without the header counts alone). A region
    publishes at each boundary only the queues that changed (at least one record): a queue
    without a record at a boundary its region completed is read as its latest record, as of that
    boundary (``as_of``), which is the record an every-queue publisher would have sent."""

    def __init__(
        self, client_config: dict[str, Any], codec: Codec, history_ms: int = 3_600_000,
        max_history_ms: int = 26 * 3_600_000,
    ) -> None:  # fmt: skip
        self._history: dict[tuple[str, str], list[QueueSnapshot]] = {}
        self._progress: dict[str, int] = {}
        self._completed: dict[str, list[int]] = {}  # region -> the as_of of its complete boundaries
        self._arriving: dict[tuple[str, int], set[str]] = {}  # (region, as_of) -> queues read so far
        # records older than this are kept (a pending decision of this worker may read them), back to
        # ``max_history_ms`` behind the newest; the worker sets it from its partitions
        self.keep_from_ms = 0
        self._lock = threading.Lock()
        self._client, self._codec = client_config, codec
        self._history_ms, self._max_history_ms = history_ms, max_history_ms
        self._stop, self.ready = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="queue-state-table", daemon=True)

    def start(self) -> GlobalQueueTable:
        self._thread.start()
        return self

    def wait_ready(self, timeout_s: float) -> bool:
        """Cold start: True once the topic was read to the end offsets it had at the start."""
        return self.ready.wait(timeout_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def add(self, snapshot: QueueSnapshot, boundary_size: int | None = None) -> None:
        key = (snapshot.region, snapshot.queue)
        with self._lock:
            self._count(snapshot, boundary_size)
            history = self._history.setdefault(key, [])
            if history and history[-1].as_of_ms >= snapshot.as_of_ms:
                index = bisect.bisect_left(history, snapshot.as_of_ms, key=_as_of)
                if index < len(history) and history[index].as_of_ms == snapshot.as_of_ms:
                    history[index] = snapshot  # a record re-published after a restart: the same state
                else:
                    history.insert(index, snapshot)
                return
            history.append(snapshot)
            newest = snapshot.as_of_ms
            floor = max(min(newest - self._history_ms, self.keep_from_ms), newest - self._max_history_ms)
            if history[0].as_of_ms < floor:
                del history[: max(0, bisect.bisect_left(history, floor, key=_as_of) - 1)]

    def _count(self, snapshot: QueueSnapshot, boundary_size: int | None) -> None:
        region, as_of = snapshot.region, snapshot.as_of_ms
        if as_of <= self._progress.get(region, -1):
            return
        if boundary_size is not None:
            seen = self._arriving.setdefault((region, as_of), set())
            seen.add(snapshot.queue)
            if len(seen) < boundary_size:
                return
            del self._arriving[(region, as_of)]
        self._progress[region] = as_of
        completed = self._completed.setdefault(region, [])
        completed.append(as_of)
        floor = max(min(as_of - self._history_ms, self.keep_from_ms), as_of - self._max_history_ms)
        if completed[0] < floor:
            del completed[: max(0, bisect.bisect_left(completed, floor) - 1)]
        for done in [k for k in self._arriving if k[0] == region and k[1] <= as_of]:
            del self._arriving[done]

    def as_of(
        self, t: int, channel: Channel, names: frozenset[str], regions: frozenset[str] | None = None
    ) -> tuple[dict[tuple[str, str], QueueSnapshot], set[str]]:
        """The latest record at or before ``t`` of every queue of the channel named in ``names``
        (as of its region's latest complete boundary at or before ``t`` when that is newer: the
        queue did not change since), and which of ``regions`` (default: every region the table
        knows) have not published all their state as of ``t`` yet (a region without any record
        counts as not there yet)."""
        found: dict[tuple[str, str], QueueSnapshot] = {}
        with self._lock:
            for key, history in self._history.items():
                if key[1] not in names or history[-1].channel is not channel:
                    continue
                index = bisect.bisect_right(history, t, key=_as_of)
                if not index:
                    continue
                snapshot = history[index - 1]
                completed = self._completed.get(key[0], ())
                at = bisect.bisect_right(completed, t)
                if at and completed[at - 1] > snapshot.as_of_ms:
                    snapshot = dataclasses.replace(snapshot, as_of_ms=completed[at - 1])
                found[key] = snapshot
            progress = dict(self._progress)
        expected = regions if regions is not None else progress.keys()
        return found, {r for r in expected if progress.get(r, -1) < t}

    def _end_offsets(self, consumer: Consumer, timeout_s: float = 30.0) -> tuple[list[int], dict[int, int]]:
        """The topic's partitions and the end offsets of the non-empty ones (retried: a topic just
        created may have no leader yet)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                topic = consumer.list_topics(QUEUE_STATE_TOPIC, timeout=10).topics[QUEUE_STATE_TOPIC]
                if topic.error is not None:
                    raise KafkaException(topic.error)
                ends = {}
                for p in topic.partitions:
                    low, high = watermarks(consumer, TopicPartition(QUEUE_STATE_TOPIC, p), timeout_s=10)
                    if high > low:
                        ends[p] = high
                return sorted(topic.partitions), ends
            except KafkaException as exc:
                if time.monotonic() > deadline or self._stop.is_set():
                    raise
                log.info("queue state table: end offsets not available yet (%s)", exc)
                time.sleep(0.5)

    def _run(self) -> None:
        consumer = clients.consumer(
            {
                **self._client,
                "group.id": f"ccpulse-queue-table-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
            }
        )
        try:
            partitions, ends = self._end_offsets(consumer)
            consumer.assign([TopicPartition(QUEUE_STATE_TOPIC, p, -2) for p in partitions])  # -2: beginning
            if not ends:
                self.ready.set()
            while not self._stop.is_set():
                for message in consumer.consume(1000, 0.1):
                    if message.error() is not None:
                        if message.error().code() != KafkaError._PARTITION_EOF:
                            log.warning("queue state table: %s", message.error())
                        continue
                    partition, offset = message.partition() or 0, message.offset()
                    read_to_end = offset is not None and offset + 1 >= ends.get(partition, 0)
                    if not self.ready.is_set() and read_to_end:
                        ends.pop(partition, None)
                        if not ends:
                            self.ready.set()
                    try:
                        record = self._codec.decode(QUEUE_STATE_TOPIC, message.value())
                    except InvalidEvent as exc:
                        log.warning("queue state table: skipping an undecodable record (%s)", exc.reason)
                        continue
                    size = dict(message.headers() or ()).get(BOUNDARY_SIZE_HEADER)
                    self.add(snapshot_of(record), int(size) if size is not None else None)
        finally:
            consumer.close()


def _as_of(snapshot: QueueSnapshot) -> int:
    return snapshot.as_of_ms


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
            del pending[:done]

    def _decide(
        self, state: PartitionState, item: dict[str, Any], out_of_time: bool, agents_in: bool = True
    ) -> RoutingDecision | None:
        cid, eid, region, queue, channel, language, priority, t = item["request"]
        request = RoutingRequest(cid, eid, region, queue, Channel(channel), language, priority, t)
        remote, lagging = self.table.as_of(
            t, request.channel, skill_queues(request, self.params), self.regions
        )
        lagging.discard(region)  # the home region's own queue is local, as of t
        if lagging and not out_of_time:
            return None
        queues = {k: q for k, q in remote.items() if k != (region, queue)}
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
        return decide(request, queues, self.params, notes=notes)

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
            if any(p["request"][0] == event.contact_id for p in state.pending_arrivals):
                state.predictions[event.contact_id] = (0.0, _ANSWERED_FIRST, event.event_time_ms)
            return
        ewt, method, arrived_ms = prediction
        if method != "NONE":
            actual = (event.event_time_ms - arrived_ms) / 1000
            self._observe("ewt_error", (event.channel.value, method, actual - ewt))
