"""The KPI worker: a batched consumer over the input topics, exact across crashes and rebalances.

Per batch (``consume(n)``): decode with fastavro; bad input to cc.dead-letter with
reason headers; apply each event to its topic-partition's state (messages below the
state's ``next_offset`` are replays and skipped); emit the changed MINUTE buckets and
the ROLLING_15M / ROLLING_60M / TODAY windows of the changed series to
cc.kpi.snapshots (versioned; the highest version per key is current). Every
``checkpoint_interval_s``: write each owned state with its position to the changelog,
wait for delivery of everything produced, then commit the input offsets. On
revoke: the same, then drop the states. On assign: restore each partition's last
checkpoint and seek to its position (so the Kafka committed offset is only a hint).

Why not a Faust ``stream.take`` loop: measured here on Apache Kafka it tops out at
10.5-12.9k events/s doing no work at all (DESIGN.md wants >= 20k with the full job);
see docs/kpi-engine.md. Faust's own table recovery also commits independently of our
state, which a checkpoint carrying its position avoids.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from streams.app import kpi
from streams.app.changelog import (
    MAX_CHECKPOINT_BYTES,
    changelog_topic,
    checkpoint_key,
    ensure_changelog_topic,
    restore,
)
from streams.app.kpi import KpiConfig
from streams.app.routing_agent import GlobalQueueTable, RoutingAgent
from streams.app.routing_local import capture_boundary, evict_routing, record_agent
from streams.app.routing_release import EventTimeGate
from streams.app.state import PartitionState, dumps
from streams.app.views import dirty_views, snapshot_key, snapshot_record, snapshot_version
from streams.codec import Codec
from streams.dead_letters import DeadLetterSanitiser
from streams.domain.errors import InvalidEvent
from streams.domain.events import AgentEvent, ContactEvent, ContactEventType, SurveyEvent
from streams.kafka_config import PartitionEnds
from streams.records import AGENT_TOPIC, CONTACT_TOPIC, SURVEY_TOPIC

log = logging.getLogger("ccpulse.app.worker")
INPUT_TOPICS = (CONTACT_TOPIC, AGENT_TOPIC, SURVEY_TOPIC)
SNAPSHOT_TOPIC, DEAD_LETTER_TOPIC, QUEUE_STATE_TOPIC = "cc.kpi.snapshots", "cc.dead-letter", "cc.queue.state"
SLOW_CHECKPOINT_S = 2.0  # a checkpoint slower than this is logged (a broker failing over, mostly)
STREAM_OF_TOPIC = {CONTACT_TOPIC: "contact", AGENT_TOPIC: "agent", SURVEY_TOPIC: "survey"}


@dataclass
class WorkerStats:
    events: int = 0
    replayed_skipped: int = 0
    dead_letters: int = 0
    snapshots: int = 0
    decisions: int = 0
    queue_states: int = 0
    checkpoints: int = 0
    restored: dict[int, dict[str, int]] = field(default_factory=dict)  # partition -> positions resumed
    epochs: dict[int, int] = field(default_factory=dict)  # partition -> restore epoch taken (recorded)


@dataclass
class WorkerOptions:
    group_id: str = "ccpulse-kpi"
    app_id: str = "ccpulse-kpi"
    topics: tuple[str, ...] = INPUT_TOPICS
    batch_size: int = 10_000
    poll_timeout_s: float = 0.1
    checkpoint_interval_s: float = 2.0
    idempotent_producer: bool = True  # Tansu cannot (InitProducerId fails): the demo turns it off
    changelog_replication_factor: int | None = None
    queue_state_every_ms: int = 30_000  # cc.queue.state: every queue at each such event-time boundary
    routing: bool = True  # a decision per new ARRIVED contact (cc.routing.decisions)
    # a pending decision or boundary waits for its inputs (agent stream past t, remote regions'
    # state) at most this long in wall time; an agent topic read to its end counts after the grace
    routing_max_wait_s: float = 5.0
    routing_caught_up_grace_s: float = 1.0
    table_ready_timeout_s: float = 30.0  # cold start: cc.queue.state read to its end before routing
    # the regions a decision waits for (their cc.queue.state as of t); None: those in cc.queue.state
    routing_regions: tuple[str, ...] | None = None
    auto_offset_reset: str = "earliest"  # for a group without positions; "latest" skips the backlog
    kpi: KpiConfig = field(default_factory=KpiConfig)
    # CCPULSE_PSEUDONYM_KEY: identities in dead letters are pseudonymised with it, else withheld
    pseudonym_key: bytes | None = field(default=None, repr=False)


class KpiWorker:
    def __init__(
        self,
        client_config: dict[str, Any],
        codec: Codec,
        options: WorkerOptions | None = None,
        observer: Callable[[str, Any], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options or WorkerOptions()
        self._client = dict(client_config)
        self._codec, self._clock = codec, clock
        self._observe = observer or (lambda _name, _value: None)
        self.states: dict[int, PartitionState] = {}  # by partition number (co-partitioned topics)
        self.lock = threading.Lock()  # held while states change; the metrics collector reads under it
        self.stats = WorkerStats()
        self._producer: Producer | None = None
        self._consumer: Consumer | None = None
        self._delivery_errors: list[str] = []
        self._last_checkpoint = 0.0
        self._assigned_at = 0.0
        self._closing = False
        self._ends = PartitionEnds()  # --idle-exit: exit only with every partition read to its end
        self.router: RoutingAgent | None = None
        self._gate: EventTimeGate | None = None  # built with the consumer and producer

    # -- lifecycle -------------------------------------------------------------------

    def run(self, stop: threading.Event, idle_exit_s: float | None = None) -> WorkerStats:
        o = self.options
        ensure_changelog_topic(AdminClient(self._client), o.topics, o.app_id, o.changelog_replication_factor)
        self._producer = Producer(
            {
                **self._client,
                "acks": "all",
                "enable.idempotence": o.idempotent_producer,
                "linger.ms": 5,
                "compression.type": "lz4",
                "message.max.bytes": MAX_CHECKPOINT_BYTES + 1024,
            }
        )
        self._consumer = Consumer(
            {
                **self._client,
                "group.id": o.group_id,
                "enable.auto.commit": False,
                "enable.partition.eof": True,  # PartitionEnds: --idle-exit once all is read
                "auto.offset.reset": o.auto_offset_reset,
                "session.timeout.ms": 10_000,
                "heartbeat.interval.ms": 1_000,
                "max.poll.interval.ms": 300_000,
                "partition.assignment.strategy": "range",  # partition p of every input topic together
            }
        )
        table = None
        if o.routing:
            table = GlobalQueueTable(self._client, self._codec).start()
            if not table.wait_ready(o.table_ready_timeout_s):  # decisions then wait on its progress
                log.warning("cc.queue.state not read to its end in %.0f s", o.table_ready_timeout_s)
            regions = frozenset(o.routing_regions) if o.routing_regions else None
            self.router = RoutingAgent(
                table, self._codec, observe=self._observe, max_wait_s=o.routing_max_wait_s, regions=regions
            )
        self._consumer.subscribe(list(o.topics), on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._last_checkpoint = self._clock()
        last_message_at = self._clock()
        try:
            while not stop.is_set():
                messages = self._consumer.consume(o.batch_size, o.poll_timeout_s)
                if messages:
                    self._process(messages)
                    last_message_at = self._clock()
                else:
                    with self.lock:
                        self._release()  # what waited on wall time only
                if self._clock() - self._last_checkpoint >= o.checkpoint_interval_s:
                    self.checkpoint()
                # idle counts from the last message or assignment (a join may wait for a dead member)
                last_activity = max(last_message_at, self._assigned_at)
                if idle_exit_s is not None and self._clock() - last_activity > idle_exit_s:
                    with self.lock:  # pending decisions and boundaries end by the wall-clock bound at most
                        pending = any(
                            st.pending_arrivals or st.pending_boundaries for st in self.states.values()
                        )
                    if not pending and self._ends.read_to_end(self._consumer):
                        break
                    last_message_at = self._clock() - idle_exit_s + 1.0  # look again in a second
            self.checkpoint()
        finally:
            if table is not None:
                table.stop()
            self._closing = True  # the final checkpoint above is written: revoke only drops states
            self._consumer.close()
            self._producer.flush(30)
            self._producer = self._consumer = None  # librdkafka handles go with their last reference
            self._gate = None
        return self.stats

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        consumer_config = {k: v for k, v in self._client.items() if not k.startswith("group.")}
        started = time.perf_counter()
        numbers = sorted({tp.partition for tp in partitions})
        restored = restore(consumer_config, self.options.app_id, numbers)
        with self.lock:
            for number in numbers:
                state = restored.get(number)
                if state is not None:
                    self.stats.restored[number] = dict(state.next_offsets)
                state = state or PartitionState(number)
                state.epoch += 1  # outranks what earlier owners emitted (views.snapshot_version)
                self.states[number] = state
                self.stats.epochs[number] = state.epoch
        recording = time.perf_counter()
        self._record_epochs(numbers)
        restore_s = time.perf_counter() - started
        log.info(
            "restore epochs %s recorded in %.3f s",
            {n: self.states[n].epoch for n in numbers}, time.perf_counter() - recording,
        )  # fmt: skip
        self._observe("restore_seconds", restore_s)
        self._assigned_at = self._clock()
        for tp in partitions:
            position = self.states[tp.partition].next_offsets.get(tp.topic)
            if position is not None:
                tp.offset = position
        log.info(  # the restore time is the standby cost of a takeover (docs/reliability.md)
            "assigned %d partitions (%d checkpoints restored in %.3f s): %s",
            len(partitions), len(restored), restore_s, [f"{t.topic}[{t.partition}]" for t in partitions],
        )  # fmt: skip
        consumer.assign(partitions)

    def _record_epochs(self, numbers: list[int]) -> None:
        """Write the taken partitions' states with their new epoch to the changelog and wait for
        the acknowledgements, before anything is emitted with that epoch: were it recorded only
        by the next checkpoint, a crash before that would let the next owner take the same
        epoch again, and its snapshots would not outrank this owner's. The record is a whole
        checkpoint (the restored state and positions), so restore stays one record per
        partition; it costs one checkpoint write per takeover (docs/kpi-engine.md)."""
        assert self._producer is not None
        app_id = self.options.app_id
        for number in numbers:
            self._producer.produce(
                changelog_topic(app_id), dumps(self.states[number]), checkpoint_key(app_id, number),
                partition=number, on_delivery=self._delivered,
            )  # fmt: skip
        remaining = self._producer.flush(60)
        if remaining or self._delivery_errors:
            errors, self._delivery_errors = self._delivery_errors, []
            msg = f"restore epochs not recorded ({remaining} pending; {errors[:3]}); nothing is emitted"
            raise KafkaException(msg)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {tp.partition for tp in partitions}
        if not self._closing:
            self.checkpoint(only=revoked)
        with self.lock:
            for key in revoked:
                self.states.pop(key, None)
        consumer.unassign()

    # -- the hot path -------------------------------------------------------------------

    def _process(self, messages: list[Message]) -> None:
        decode, states, config = self._codec.decode, self.states, self.options.kpi
        per_topic: dict[str, int] = {}
        sample: list[int] = []
        now = time.monotonic()
        with self.lock:
            for message in messages:
                if message.error() is not None:
                    self._consumer_error(message)
                    continue
                topic: str = message.topic()  # type: ignore[assignment, unused-ignore]
                partition: int = message.partition()  # type: ignore[assignment, unused-ignore]
                offset: int = message.offset()  # type: ignore[assignment, unused-ignore]
                state = states.get(partition)
                if state is None:
                    continue  # revoked while the batch was in flight: the new owner reads it
                positions = state.next_offsets
                if offset < positions.get(topic, 0):
                    self.stats.replayed_skipped += 1
                    continue
                positions[topic] = offset + 1
                per_topic[topic] = per_topic.get(topic, 0) + 1
                try:
                    event = decode(topic, message.value())
                except InvalidEvent as exc:
                    self._dead_letter(message, exc)
                    continue
                if type(event) is ContactEvent:
                    capture_boundary(state, event.event_time_ms, self.options.queue_state_every_ms, now)
                    if kpi.apply_contact(state, event, config) and self.router is not None:
                        if event.type is ContactEventType.ARRIVED:
                            self.router.on_arrival(state, event)
                        elif event.type is ContactEventType.ANSWERED:
                            self.router.on_answered(state, event)
                elif type(event) is SurveyEvent:
                    kpi.apply_survey(state, event, config)
                elif type(event) is AgentEvent:
                    kpi.apply_agent(state, event)
                    record_agent(state, event)
                if len(sample) < 64:
                    sample.append(event.event_time_ms)
            self._release()
            self._emit_snapshots()
        now_ms = self._clock() * 1000
        for event_time_ms in sample:
            self._observe("event_to_visible_seconds", max(0.0, (now_ms - event_time_ms) / 1000))
        for topic, count in per_topic.items():
            self._observe("events_in", (topic, count))
        self.stats.events += sum(per_topic.values())
        if self.router is not None:
            self.stats.decisions = self.router.decisions

    def _consumer_error(self, message: Message) -> None:
        error = message.error()
        if error is not None and error.code() == KafkaError._PARTITION_EOF:
            self._ends.saw_end(message)
        elif error is not None:
            log.warning("consumer error: %s", error)

    def _dead_letter(self, message: Message, exc: InvalidEvent) -> None:
        assert self._producer is not None
        topic = str(message.topic())
        record = {
            "original_topic": topic,
            "original_partition": message.partition(),
            "original_offset": message.offset(),
            "original_key": message.key(),
            "original_value": message.value() or b"",
            "reason": exc.reason,
            "detail": exc.detail,
            "failed_at_ms": int(self._clock() * 1000),
            "consumer": self.options.app_id,
        }
        # never a raw identity in Kafka, history or logs: see streams/dead_letters.py
        record = DeadLetterSanitiser(self._codec, self.options.pseudonym_key).sanitise(record)
        headers: list[tuple[str, str | bytes | None]] = [("reason", exc.reason), ("original_topic", topic)]
        self._producer.produce(
            DEAD_LETTER_TOPIC, self._codec.encode(DEAD_LETTER_TOPIC, record), topic.encode(),
            headers=headers, on_delivery=self._delivered,
        )  # fmt: skip
        self.stats.dead_letters += 1
        self._observe("dead_letter", (topic, exc.reason))

    def _emit_snapshots(self) -> None:
        assert self._producer is not None
        now_ms = int(self._clock() * 1000)
        encode, produce = self._codec.encode, self._producer.produce
        for state in self.states.values():
            if not state.dirty_minutes and not state.dirty_series:
                continue
            version = snapshot_version(state)
            for view in dirty_views(state):
                key = snapshot_key(view.region, view.channel, view.window, view.start_ms)
                record = snapshot_record(view, version, now_ms)
                produce(
                    SNAPSHOT_TOPIC, encode(SNAPSHOT_TOPIC, record), key.encode(), on_delivery=self._delivered
                )
                self.stats.snapshots += 1
            self._producer.poll(0)

    def _release(self) -> None:
        """Queue-state records and routing decisions whose inputs up to their event time are in."""
        assert self._producer is not None and self._consumer is not None
        if self._gate is None:
            self._gate = EventTimeGate(
                self._consumer, self._producer, self._codec, self.options, self._delivered
            )
        self.stats.queue_states += self._gate.release(self.states.values(), self.router)
        if self.router is not None:
            self.stats.decisions = self.router.decisions

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._delivery_errors.append(f"{message.topic()}: {error}")

    # -- checkpoints -----------------------------------------------------------------------

    def checkpoint(self, only: set[int] | None = None) -> None:
        """Write the owned states with their positions, wait for every delivery, commit offsets."""
        assert self._producer is not None and self._consumer is not None
        started = time.perf_counter()
        offsets = []
        with self.lock:
            for key, state in self.states.items():
                if only is not None and key not in only:
                    continue
                kpi.evict(state, self.options.kpi)
                evict_routing(state)
                self._producer.produce(
                    changelog_topic(self.options.app_id), dumps(state),
                    checkpoint_key(self.options.app_id, state.partition),
                    partition=state.partition, on_delivery=self._delivered,
                )  # fmt: skip
                offsets += [TopicPartition(t, state.partition, o) for t, o in state.next_offsets.items()]
        remaining = self._producer.flush(60)
        if remaining or self._delivery_errors:
            errors, self._delivery_errors = self._delivery_errors, []
            msg = f"checkpoint not delivered ({remaining} pending; {errors[:3]}); offsets not committed"
            raise KafkaException(msg)
        flushed = time.perf_counter()
        if offsets:
            try:
                self._consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:  # a hint only: restore seeks to the checkpoint's positions
                log.warning(
                    "offset commit failed after a written checkpoint (%s); restore does not need it", exc
                )
        self.stats.checkpoints += 1
        self._last_checkpoint = self._clock()
        seconds = time.perf_counter() - started
        self._observe("checkpoint_seconds", seconds)
        if seconds > SLOW_CHECKPOINT_S:  # the loop consumes nothing meanwhile: KPIs go stale
            log.warning(
                "slow checkpoint: %.1f s (outputs acknowledged after %.1f s, offset commit %.1f s)",
                seconds, flushed - started, time.perf_counter() - flushed,
            )  # fmt: skip
