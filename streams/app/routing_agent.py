"""Routing in the worker: a decision for each new ARRIVED contact, from a global view of cc.queue.state.

``GlobalQueueTable`` reads every partition of the compacted cc.queue.state from the
start in a thread (no consumer group: every worker sees every region) and keeps the
latest observation per region|queue. ``RoutingAgent.on_arrival`` runs the pure policy
(streams/domain/routing.py), produces the decision to cc.routing.decisions keyed by
contact_id, and remembers the predicted wait; ``on_answered`` observes actual minus
predicted wait (``ccpulse_ewt_error_seconds``). A contact overflowed to a region on
another partition is answered there, so its error is not observed (documented gap).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from streams.app.state import PartitionState
from streams.codec import Codec
from streams.domain.errors import InvalidEvent
from streams.domain.events import Channel, ContactEvent
from streams.domain.routing import (
    EwtMethod,
    QueueSnapshot,
    RoutingDecision,
    RoutingParams,
    RoutingRequest,
    decide,
    estimate_all,
)

log = logging.getLogger("ccpulse.app.routing")
QUEUE_STATE_TOPIC, DECISIONS_TOPIC = "cc.queue.state", "cc.routing.decisions"


def snapshot_of(record: dict[str, Any]) -> QueueSnapshot:
    r = record
    return QueueSnapshot(
        r["region"], r["queue"], Channel(r["channel"]), frozenset(r["languages"]), r["contacts_in_queue"],
        r["agents_logged_in"], r["agents_ready"], r["free_chat_slots"], r["aht_seconds"],
        r["arrival_rate_per_s"], r["abandon_rate_per_s"], r["as_of_ms"],
    )  # fmt: skip


class GlobalQueueTable:
    def __init__(
        self, client_config: dict[str, Any], codec: Codec, params: RoutingParams | None = None
    ) -> None:
        # replaced whole (copy on write) so that a reader holds a consistent pair without locking
        self.view: tuple[
            dict[tuple[str, str], QueueSnapshot], dict[tuple[str, str], tuple[float, EwtMethod]]
        ] = ({}, {})
        self._client, self._codec, self._params = client_config, codec, params or RoutingParams()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="queue-state-table", daemon=True)

    def start(self) -> GlobalQueueTable:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        consumer = Consumer(
            {
                **self._client,
                "group.id": f"ccpulse-queue-table-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
            }
        )
        try:
            partitions = (
                consumer.list_topics(QUEUE_STATE_TOPIC, timeout=10).topics[QUEUE_STATE_TOPIC].partitions
            )
            consumer.assign([TopicPartition(QUEUE_STATE_TOPIC, p, -2) for p in partitions])  # -2: beginning
            while not self._stop.is_set():
                queues, changed = dict(self.view[0]), False
                for message in consumer.consume(1000, 0.2):
                    if message.error() is not None:
                        if message.error().code() != KafkaError._PARTITION_EOF:  # type: ignore[union-attr]
                            log.warning("queue state table: %s", message.error())
                        continue
                    try:
                        record = self._codec.decode(QUEUE_STATE_TOPIC, message.value())
                    except InvalidEvent as exc:
                        log.warning("queue state table: skipping an undecodable record (%s)", exc.reason)
                        continue
                    snapshot = snapshot_of(record)
                    key = (snapshot.region, snapshot.queue)
                    current = queues.get(key)
                    if current is None or current.as_of_ms <= snapshot.as_of_ms:
                        queues[key], changed = snapshot, True
                if changed:  # EWTs once per update, not once per decision
                    self.view = (queues, estimate_all(queues, self._params))
        finally:
            consumer.close()


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


class RoutingAgent:
    def __init__(
        self,
        table: GlobalQueueTable,
        codec: Codec,
        params: RoutingParams | None = None,
        observe: Callable[[str, Any], None] | None = None,
    ) -> None:
        self.table, self._codec = table, codec
        self.params = params or RoutingParams()
        self._observe = observe or (lambda _name, _value: None)
        self.decisions = 0
        self.batch_consumed_at = time.perf_counter()  # set by the worker when a batch arrives

    def on_arrival(
        self, state: PartitionState, event: ContactEvent, producer: Producer, on_delivery: Any
    ) -> None:
        request = RoutingRequest(
            event.contact_id, event.event_id, event.region, event.queue, event.channel, event.language,
            event.priority, event.event_time_ms,
        )  # fmt: skip
        queues, estimates = self.table.view
        decision = decide(request, queues, self.params, estimates)
        value = self._codec.encode(DECISIONS_TOPIC, decision_record(decision))
        producer.produce(DECISIONS_TOPIC, value, event.contact_id.encode(), on_delivery=on_delivery)
        state.predictions[event.contact_id] = (
            decision.ewt_seconds,
            decision.ewt_method.value,
            event.event_time_ms,
        )
        self.decisions += 1
        # latency from the batch holding the ARRIVED event being consumed to the decision being produced
        self._observe(
            "routing_decision", (decision.reason.value, time.perf_counter() - self.batch_consumed_at)
        )

    def on_answered(self, state: PartitionState, event: ContactEvent) -> None:
        prediction = state.predictions.pop(event.contact_id, None)
        if prediction is None:
            return
        ewt, method, arrived_ms = prediction
        if method != "NONE":
            actual = (event.event_time_ms - arrived_ms) / 1000
            self._observe("ewt_error", (event.channel.value, method, actual - ewt))
