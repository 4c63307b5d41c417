"""The engine's consumer loop: batched, per-partition state, exact across crashes and rebalances.

A job (``Job`` below: the KPI + queue-state + routing job is streams/jobs/worker.py) says how
to decode a message, apply an event to its partition's state, what to emit after a batch,
and how to serialise and restore a state. The loop does the rest, which is not about any
job: subscribe to co-partitioned input topics with range assignment (partition p of every
input topic to one member); on assign restore each partition's last checkpoint, record the
new restore epoch durably before anything is emitted with it, and seek to the restored
positions (the Kafka committed offset is only a hint); skip replayed messages below a
state's positions; send undecodable input to the dead-letter topic; every
``checkpoint_interval_s`` write each state with its positions to the changelog and commit
(streams/engine/transactions.py: a Kafka transaction with the input offsets and group
metadata, which fences zombies; on Tansu, flush then commit); between checkpoints a
transaction commit every ``commit_interval_s`` makes outputs visible; on revoke checkpoint
then drop; on lost drop unwritten (and, transactional, abort what was produced since the
last commit). Why this engine and not Faust or Quix Streams: docs/kpi-engine.md.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)

from streams.domain.errors import InvalidEvent
from streams.engine import clients
from streams.engine.checkpoints import (
    MAX_CHECKPOINT_BYTES,
    changelog_topic,
    checkpoint_key,
    ensure_changelog_topic,
)
from streams.engine.dead_letters import DeadLetterSanitiser, dead_letter
from streams.engine.loop_options import LoopOptions, LoopStats
from streams.engine.read_to_end import EndOffsets, PartitionEnds
from streams.engine.transactions import OutputCommitter, await_stable_offsets
from streams.wire.topics import DEAD_LETTER_TOPIC

log = logging.getLogger("ccpulse.engine.loop")
SLOW_CHECKPOINT_S = 2.0  # a checkpoint slower than this is logged (a broker failing over, mostly)
SAMPLES_PER_BATCH = 64  # event times per batch observed as event-to-visible latency


class PartitionedState(Protocol):
    """What the loop needs of a job's per-partition state."""

    partition: int
    epoch: int  # +1, durably recorded, each time a member takes the partition
    next_offsets: dict[str, int]  # topic -> first offset not yet applied


S = TypeVar("S", bound=PartitionedState)


class Job(Protocol[S]):
    def new_state(self, partition: int) -> S: ...
    def restore(
        self, consumer_config: dict[str, Any], app_id: str, partitions: list[int]
    ) -> dict[int, S]: ...
    def dumps(self, state: S) -> bytes: ...
    def decode(self, topic: str, value: bytes | None) -> Any: ...  # raises InvalidEvent
    def event_time_ms(self, event: Any) -> int: ...
    def started(self, loop: StreamLoop[S]) -> None: ...  # clients exist; before subscribing
    def stopped(self) -> None: ...
    def apply(self, state: S, topic: str, event: Any, now: float) -> None: ...  # under the lock
    def after_batch(self, states: Iterable[S]) -> None: ...  # under the lock: emit
    def on_idle(self, states: Iterable[S]) -> None: ...  # under the lock: what waits on wall time
    def pending(self, states: Iterable[S]) -> bool: ...  # outputs still waiting (idle exit waits)
    def before_checkpoint(self, state: S) -> None: ...  # under the lock: eviction


class StreamLoop(Generic[S]):
    def __init__(
        self,
        client_config: dict[str, Any],
        job: Job[S],
        options: LoopOptions,
        sanitiser: DeadLetterSanitiser,
        stats: LoopStats | None = None,
        observe: Callable[[str, Any], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options, self.job, self._client = options, job, dict(client_config)
        self.stats = stats if stats is not None else LoopStats()
        self._sanitiser, self._clock = sanitiser, clock
        self._observe = observe or (lambda _name, _value: None)
        self.states: dict[int, S] = {}  # by partition number (co-partitioned topics)
        self.lock: Any = threading.Lock()  # held while states change; a metrics collector reads under it
        self.producer: Producer | None = None
        self.consumer: Consumer | None = None
        self._out: OutputCommitter | None = None
        self._last_checkpoint = self._last_commit = self._assigned_at = 0.0
        self._closing = False
        self._ends = PartitionEnds()  # idle exit: only with every partition read to its end
        self.end_offsets = EndOffsets(self._client)  # the broker's end offsets, not behind a fetch

    # -- lifecycle -------------------------------------------------------------------

    def run(self, stop: threading.Event, idle_exit_s: float | None = None) -> None:
        o = self.options
        ensure_changelog_topic(
            clients.admin(self._client), o.topics, o.app_id, o.changelog_replication_factor
        )
        transactional = o.transactional and o.idempotent_producer
        producer_config = {
            **self._client, "acks": "all", "enable.idempotence": o.idempotent_producer, "linger.ms": 5,
            "compression.type": "lz4", "message.max.bytes": MAX_CHECKPOINT_BYTES + 1024,
        }  # fmt: skip
        if transactional:  # one id per instance: KIP-447 fences by group generation, not by id
            producer_config["transactional.id"] = f"{o.app_id}-{uuid.uuid4().hex[:12]}"
            producer_config["transaction.timeout.ms"] = int(o.transaction_timeout_s * 1000)
        self.producer = clients.producer(producer_config)
        self._out = OutputCommitter(self.producer, transactional=transactional)
        self._out.start()
        self.consumer = clients.consumer(
            {
                **self._client,
                "group.id": o.group_id,
                "enable.auto.commit": False,
                "enable.partition.eof": True,  # PartitionEnds: idle exit once all is read
                "auto.offset.reset": o.auto_offset_reset,
                "session.timeout.ms": 10_000,
                "heartbeat.interval.ms": 1_000,
                "max.poll.interval.ms": 300_000,
                "partition.assignment.strategy": "range",  # partition p of every input topic together
            }
        )
        try:
            self.job.started(self)
            self.consumer.subscribe(
                list(o.topics), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
            )
            self._loop(stop, idle_exit_s, transactional)
            self.checkpoint()
        finally:
            self.job.stopped()
            self._closing = True  # the final checkpoint above is written: revoke only drops states
            self.consumer.close()
            self._out.close()  # transactional: what is not committed is discarded, as by a crash
            self.end_offsets.close()
            self.producer = self.consumer = None  # librdkafka handles go with their last reference

    def _loop(self, stop: threading.Event, idle_exit_s: float | None, transactional: bool) -> None:
        o, consumer = self.options, self.consumer
        assert consumer is not None
        self._last_checkpoint = self._last_commit = self._clock()
        last_message_at = self._clock()
        while not stop.is_set():
            messages = consumer.consume(o.batch_size, o.poll_timeout_s)
            if messages:
                self._process(messages)
                last_message_at = self._clock()
            else:
                with self.lock:
                    self.job.on_idle(self.states.values())
            if self._clock() - self._last_checkpoint >= o.checkpoint_interval_s:
                self.checkpoint()
            elif transactional and self._clock() - self._last_commit >= o.commit_interval_s:
                self._commit_outputs()
            # idle counts from the last message or assignment (a join may wait for a dead member)
            if (
                idle_exit_s is not None
                and self._clock() - max(last_message_at, self._assigned_at) > idle_exit_s
            ):
                with self.lock:
                    pending = self.job.pending(self.states.values())
                if not pending and self._ends.read_to_end(consumer, self.end_offsets):
                    return
                last_message_at = self._clock() - idle_exit_s + 1.0  # look again in a second

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        consumer_config = {k: v for k, v in self._client.items() if not k.startswith("group.")}
        if self._out is not None and self._out.transactional:
            waited = await_stable_offsets(consumer, partitions, self.options.transaction_timeout_s + 15.0)
            if waited >= 1.0:
                log.warning("waited %.1f s for a previous owner's open transaction", waited)
        started = time.perf_counter()
        numbers = sorted({tp.partition for tp in partitions})
        restored = self.job.restore(consumer_config, self.options.app_id, numbers)
        with self.lock:
            for number in numbers:
                state = restored.get(number)
                if state is not None:
                    self.stats.restored[number] = dict(state.next_offsets)
                state = state or self.job.new_state(number)
                state.epoch += 1  # outranks what earlier owners emitted (a job's output versions)
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
        # Each partition starts where its state says, never at the group's committed offset: a
        # transactional commit of outputs between checkpoints moves that past what the last
        # checkpoint applied, and a topic the state has no position for had nothing applied
        # from it (a clean-clone CI run lost events of a topic a frozen worker's first
        # checkpoint had not read yet). auto_offset_reset decides where "nothing" starts.
        nothing_read = OFFSET_BEGINNING if self.options.auto_offset_reset == "earliest" else OFFSET_END
        for tp in partitions:
            position = self.states[tp.partition].next_offsets.get(tp.topic)
            tp.offset = nothing_read if position is None else position
        log.info(  # the restore time is the standby cost of a takeover (docs/reliability.md)
            "assigned %d partitions (%d checkpoints restored in %.3f s): %s",
            len(partitions),
            len(restored),
            restore_s,
            [f"{t.topic}[{t.partition}]" for t in partitions],
        )  # fmt: skip (tests/integration/test_worker_recovery.py reads this line)
        consumer.assign(partitions)

    def _record_epochs(self, consumer: Consumer, numbers: list[int]) -> None:
        """Write the taken partitions' states with their new epoch to the changelog and wait for
        the acknowledgements, before anything is emitted with that epoch: were it recorded only
        by the next checkpoint, a crash before that would let the next owner take the same
        epoch again, and its outputs would not outrank this owner's. The record is a whole
        checkpoint (the restored state and positions), so restore stays one record per
        partition; it costs one checkpoint write per takeover (docs/kpi-engine.md).

        Transactional, the restored positions go into the transaction as its offsets: the
        coordinator checks this member's generation when they are sent (a member already
        replaced is fenced there), and a member frozen between sending them and its commit
        holds the next owner in ``await_stable_offsets`` until that commit is made or aborted;
        without offsets, such a commit could land after the next owner's epoch records."""
        assert self.producer is not None and self._out is not None
        app_id = self.options.app_id
        offsets = []
        for number in numbers:
            state = self.states[number]
            self.producer.produce(
                changelog_topic(app_id), self.job.dumps(state), checkpoint_key(app_id, number),
                partition=number, on_delivery=self.delivered,
            )  # fmt: skip
            offsets += [TopicPartition(t, number, o) for t, o in state.next_offsets.items()]
        # not transactional, the committed offset is only a hint and stays where it is
        self._out.commit(consumer, offsets if self._out.transactional else [], "restore epochs")

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions taken away without a revoke (this member was cut off): another member may
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
        job, states = self.job, self.states
        decode, apply, event_time = job.decode, job.apply, job.event_time_ms
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
                apply(state, topic, event, now)
                if len(sample) < SAMPLES_PER_BATCH:
                    sample.append(event_time(event))
            job.after_batch(states.values())
        now_ms = self._clock() * 1000
        for event_time_ms in sample:
            self._observe("event_to_visible_seconds", max(0.0, (now_ms - event_time_ms) / 1000))
        for topic, count in per_topic.items():
            self._observe("events_in", (topic, count))
        self.stats.events += sum(per_topic.values())

    def _consumer_error(self, message: Message) -> None:
        error = message.error()
        if error is not None and error.code() == KafkaError._PARTITION_EOF:
            self._ends.saw_end(message)
        elif error is not None:
            log.warning("consumer error: %s", error)

    def _dead_letter(self, message: Message, exc: InvalidEvent) -> None:
        assert self.producer is not None
        value, key, headers = dead_letter(
            self._sanitiser, message, exc, self.options.app_id, int(self._clock() * 1000)
        )
        self.producer.produce(DEAD_LETTER_TOPIC, value, key, headers=headers, on_delivery=self.delivered)
        self.stats.dead_letters += 1
        self._observe("dead_letter", (str(message.topic()), exc.reason))

    def delivered(self, error: KafkaError | None, message: Message) -> None:
        """The delivery callback for everything a job produces (a failure fails the next commit)."""
        assert self._out is not None
        self._out.delivered(error, message)

    def _commit_outputs(self) -> None:
        """Between checkpoints (transactional): commit what was produced, with the positions."""
        assert self._out is not None and self.consumer is not None
        with self.lock:
            offsets = [
                TopicPartition(t, s.partition, o)
                for s in self.states.values()
                for t, o in s.next_offsets.items()
            ]
        self._out.commit(self.consumer, offsets, "outputs")
        self._last_commit = self._clock()

    # -- checkpoints -----------------------------------------------------------------------

    def checkpoint(self, only: set[int] | None = None) -> None:
        """Write the owned states with their positions, wait for every delivery, commit offsets."""
        assert self.producer is not None and self.consumer is not None and self._out is not None
        started = time.perf_counter()
        offsets = []
        with self.lock:  # eviction changes the states: a collector must not read them meanwhile
            written = [s for key, s in self.states.items() if only is None or key in only]
            for state in written:
                self.job.before_checkpoint(state)
        # Not transactional: the outputs these states count as sent are acknowledged before the
        # checkpoint records are produced (OutputCommitter.deliver says why).
        self._out.deliver("outputs before a checkpoint")
        # Serialised off the lock: only this thread changes states (a collector only reads), so
        # /metrics is not held up by the encoding of a large state (issue 16).
        for state in written:
            self.producer.produce(
                changelog_topic(self.options.app_id), self.job.dumps(state),
                checkpoint_key(self.options.app_id, state.partition),
                partition=state.partition, on_delivery=self.delivered,
            )  # fmt: skip
            offsets += [TopicPartition(t, state.partition, o) for t, o in state.next_offsets.items()]
        flushed = time.perf_counter()
        self._out.commit(self.consumer, offsets, "checkpoint")  # raises: offsets not committed
        self._last_commit = self._last_checkpoint = self._clock()
        self.stats.checkpoints += 1
        seconds = time.perf_counter() - started
        self._observe("checkpoint_seconds", seconds)
        if seconds > SLOW_CHECKPOINT_S:  # the loop consumes nothing meanwhile: outputs go stale
            log.warning(
                "slow checkpoint: %.1f s (%.1f s to serialise and hand over)", seconds, flushed - started
            )
