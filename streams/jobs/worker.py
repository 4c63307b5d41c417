"""The KPI worker: a batched consumer over the input topics, exact across crashes and rebalances.

Per batch (``consume(n)``): decode with fastavro; bad input to cc.dead-letter with
reason headers; apply each event to its topic-partition's state (messages below the
state's ``next_offset`` are replays and skipped); emit the changed MINUTE buckets and
the ROLLING_15M / ROLLING_60M / TODAY windows of the changed series to
cc.kpi.snapshots (versioned; the highest version per key is current). Every
``checkpoint_interval_s``: write each owned state with its position to the changelog and
commit (streams/engine/transactions.py: a Kafka transaction with the input offsets and
group metadata, which fences zombies; on Tansu, flush then commit). Between checkpoints,
a transaction commit every ``commit_interval_s`` makes snapshots visible. On revoke:
checkpoint, then drop the states; on lost partitions: drop them unwritten. On assign:
restore each partition's last checkpoint and seek to its position (so the Kafka committed
offset is only a hint). Why this engine and not Faust or Quix Streams: docs/kpi-engine.md.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from streams.codec import Codec
from streams.domain.errors import InvalidEvent
from streams.domain.events import AgentEvent, ContactEvent, ContactEventType, SurveyEvent
from streams.engine import clients
from streams.engine.checkpoints import (
    MAX_CHECKPOINT_BYTES,
    changelog_topic,
    checkpoint_key,
    ensure_changelog_topic,
)
from streams.engine.dead_letters import DEAD_LETTER_TOPIC, DeadLetterSanitiser, dead_letter
from streams.engine.read_to_end import PartitionEnds
from streams.engine.transactions import OutputCommitter
from streams.jobs import kpi
from streams.jobs.options import INPUT_TOPICS as INPUT_TOPICS  # re-exported: the worker's public names
from streams.jobs.options import WorkerOptions as WorkerOptions
from streams.jobs.options import WorkerStats
from streams.jobs.router import GlobalQueueTable, Router
from streams.jobs.routing_local import capture_boundary, evict_routing, record_agent
from streams.jobs.routing_release import EventTimeGate
from streams.jobs.state import PartitionState, dumps, restored_states
from streams.jobs.views import dirty_views, snapshot_key, snapshot_record, snapshot_version
from streams.records import AGENT_TOPIC, CONTACT_TOPIC, SURVEY_TOPIC

log = logging.getLogger("ccpulse.app.worker")
SNAPSHOT_TOPIC, QUEUE_STATE_TOPIC = "cc.kpi.snapshots", "cc.queue.state"
SLOW_CHECKPOINT_S = 2.0  # a checkpoint slower than this is logged (a broker failing over, mostly)
STREAM_OF_TOPIC = {CONTACT_TOPIC: "contact", AGENT_TOPIC: "agent", SURVEY_TOPIC: "survey"}


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
        self._sanitiser = DeadLetterSanitiser(codec, self.options.pseudonym_key)
        self._last_checkpoint = self._last_commit = 0.0
        self._out: OutputCommitter | None = None
        self._assigned_at = 0.0
        self._closing = False
        self._ends = PartitionEnds()  # --idle-exit: exit only with every partition read to its end
        self.router: Router | None = None
        self._gate: EventTimeGate | None = None  # built with the consumer and producer

    # -- lifecycle -------------------------------------------------------------------

    def run(self, stop: threading.Event, idle_exit_s: float | None = None) -> WorkerStats:
        o = self.options
        admin = clients.admin(self._client)
        ensure_changelog_topic(admin, o.topics, o.app_id, o.changelog_replication_factor)
        transactional = o.transactional and o.idempotent_producer
        producer_config = {
            **self._client, "acks": "all", "enable.idempotence": o.idempotent_producer, "linger.ms": 5,
            "compression.type": "lz4", "message.max.bytes": MAX_CHECKPOINT_BYTES + 1024,
        }  # fmt: skip
        if transactional:  # one id per instance: KIP-447 fences by group generation, not by id
            producer_config["transactional.id"] = f"{o.app_id}-{uuid.uuid4().hex[:12]}"
        self._producer = clients.producer(producer_config)
        self._out = OutputCommitter(self._producer, transactional=transactional)
        self._out.start()
        self._consumer = clients.consumer(
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
            self.router = Router(
                table, self._codec, observe=self._observe, max_wait_s=o.routing_max_wait_s, regions=regions
            )
        self._consumer.subscribe(
            list(o.topics), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        self._last_checkpoint = self._last_commit = self._clock()
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
                elif transactional and self._clock() - self._last_commit >= o.commit_interval_s:
                    self._commit_outputs()
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
            self._out.close()  # transactional: what is not committed is discarded, as by a crash
            self._producer = self._consumer = None  # librdkafka handles go with their last reference
            self._gate = None
        return self.stats

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        consumer_config = {k: v for k, v in self._client.items() if not k.startswith("group.")}
        started = time.perf_counter()
        numbers = sorted({tp.partition for tp in partitions})
        restored = restored_states(consumer_config, self.options.app_id, numbers)
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
        self._record_epochs(consumer, numbers)
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

    def _record_epochs(self, consumer: Consumer, numbers: list[int]) -> None:
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
        assert self._out is not None
        self._out.commit(consumer, [], "restore epochs")  # raises: nothing is emitted

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions taken away without a revoke (this member was cut off): another worker may
        own them already, so nothing is written for them; their states are dropped."""
        log.warning("partitions lost: %s", sorted({tp.partition for tp in partitions}))
        with self.lock:
            for tp in partitions:
                self.states.pop(tp.partition, None)
            if self._out is not None and self._out.transactional:
                # what was produced since the last commit may be a zombie's: discarded. The range
                # (eager) assignor loses every partition at once, so no kept state depends on it
                self._out.discard()
                self.states.clear()

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
        value, key, headers = dead_letter(
            self._sanitiser, message, exc, self.options.app_id, int(self._clock() * 1000)
        )
        self._producer.produce(DEAD_LETTER_TOPIC, value, key, headers=headers, on_delivery=self._delivered)
        self.stats.dead_letters += 1
        self._observe("dead_letter", (str(message.topic()), exc.reason))

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
        assert self._out is not None
        self._out.delivered(error, message)

    def _commit_outputs(self) -> None:
        """Between checkpoints (transactional): commit what was produced, with the positions."""
        assert self._out is not None and self._consumer is not None
        with self.lock:
            offsets = [
                TopicPartition(t, s.partition, o)
                for s in self.states.values()
                for t, o in s.next_offsets.items()
            ]
        self._out.commit(self._consumer, offsets, "snapshots")
        self._last_commit = self._clock()

    # -- checkpoints -----------------------------------------------------------------------

    def checkpoint(self, only: set[int] | None = None) -> None:
        """Write the owned states with their positions, wait for every delivery, commit offsets."""
        assert self._producer is not None and self._consumer is not None
        started = time.perf_counter()
        offsets = []
        with self.lock:  # eviction changes the states: the collector must not read them meanwhile
            written = [s for key, s in self.states.items() if only is None or key in only]
            for state in written:
                kpi.evict(state, self.options.kpi)
                evict_routing(state)
        # Serialised off the lock: only this thread changes states (the collector reads), so
        # /metrics is not held up by the encoding of a large state (issue 16).
        for state in written:
            self._producer.produce(
                changelog_topic(self.options.app_id), dumps(state),
                checkpoint_key(self.options.app_id, state.partition),
                partition=state.partition, on_delivery=self._delivered,
            )  # fmt: skip
            offsets += [TopicPartition(t, state.partition, o) for t, o in state.next_offsets.items()]
        flushed = time.perf_counter()
        assert self._out is not None
        self._out.commit(self._consumer, offsets, "checkpoint")  # raises: offsets not committed
        self._last_commit = self._clock()
        self.stats.checkpoints += 1
        self._last_checkpoint = self._clock()
        seconds = time.perf_counter() - started
        self._observe("checkpoint_seconds", seconds)
        if seconds > SLOW_CHECKPOINT_S:  # the loop consumes nothing meanwhile: KPIs go stale
            log.warning(
                "slow checkpoint: %.1f s (%.1f s to serialise and hand over)", seconds, flushed - started
            )
