"""History sink: Kafka -> ClickHouse in offset-bounded batches, idempotent across crashes.

After ClickHouse kafka-connect's exactly-once design, with ClickHouse itself as the
source of truth for positions:
1. collect messages per topic-partition until >= max_rows rows or max_wait_s;
2. insert the rows (ReplacingMergeTree tables keyed by event), then record each
   partition's [start, end] offsets in sink_offsets, then commit end+1 to Kafka;
3. on (re)assignment, resume each partition after max(end_offset) in sink_offsets.
A crash between 2 and 3 replays the batch: its rows collapse by key and exact
queries count uniqExact(event_id), so nothing is lost and nothing double-counts.
ClickHouse down -> partitions paused (back-pressure), retries with capped
exponential backoff, one log line per attempt; nothing is dropped. A Kafka offset
commit refused after a written batch (member dropped from the group, coordinator
failing over) is logged and counted, never fatal: the commit is only a hint.
Undecodable input is skipped here (the pipeline sends it to cc.dead-letter, whose
copy this sink stores, identities pseudonymised: streams/engine/dead_letters.py) and counted.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from prometheus_client import CollectorRegistry

from streams.domain.errors import InvalidEvent
from streams.engine.dead_letters import DeadLetterSanitiser
from streams.engine.read_to_end import EndOffsets, PartitionEnds
from streams.history.event_rows import TABLE_OF_TOPIC, event_row
from streams.history.store import HistoryError, HistoryStore
from streams.observability import metrics
from streams.wire.codec import Codec
from streams.wire.topics import DEAD_LETTER_TOPIC

_KAFKA_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
log = logging.getLogger("ccpulse.history.sink")

SINK_TOPICS = tuple(TABLE_OF_TOPIC)
SINK_METRICS = (
    "ccpulse_history_rows_written_total",
    "ccpulse_history_batches_total",
    "ccpulse_history_batch_rows",
    "ccpulse_history_write_seconds",
    "ccpulse_history_write_failures_total",
    "ccpulse_history_invalid_skipped_total",
)
OFFSET_COLUMNS = (
    "consumer_group", "topic", "kafka_partition", "start_offset", "end_offset", "row_count", "written_at",
)  # fmt: skip


@dataclass
class SinkStats:
    rows_written: int = 0
    batches: int = 0
    skipped_invalid: int = 0
    write_failures: int = 0
    commit_failures: int = 0  # offset commits refused after a written batch (a hint only)
    resumed_from: dict[tuple[str, int], int] = field(default_factory=dict)


@dataclass
class _Pending:
    start: int
    end: int
    rows: list[tuple[Any, ...]] = field(default_factory=list)


class HistorySink:
    def __init__(
        self,
        consumer_config: dict[str, Any],
        store: HistoryStore,
        codec: Codec,
        topics: tuple[str, ...] = SINK_TOPICS,
        max_rows: int = 10_000,
        max_wait_s: float = 1.0,
        max_backoff_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        registry: CollectorRegistry | None = None,
        pseudonym_key: bytes | None = None,
    ) -> None:
        """``pseudonym_key`` (CCPULSE_PSEUDONYM_KEY): dead letters that still carry a raw identity
        (written by an older worker or another tool) are stored with it pseudonymised, else withheld."""
        self.group = str(consumer_config["group.id"])
        for name in (self.group, *topics):
            if not _KAFKA_NAME.match(name):
                msg = f"{name!r} is not a valid Kafka group/topic name ([A-Za-z0-9._-]{{1,249}})"
                raise ValueError(msg)
        config = {"auto.offset.reset": "earliest", **consumer_config, "enable.auto.commit": False,
                  "enable.partition.eof": True}  # fmt: skip
        self._consumer = Consumer(config)
        self._ends = PartitionEnds()  # --idle-exit: exit only with every partition read to its end
        self._end_offsets = EndOffsets(config)  # asked apart from the consumer's fetches
        self._store, self._codec, self._topics = store, codec, topics
        self._dead_letters = DeadLetterSanitiser(codec, pseudonym_key)
        self._max_rows, self._max_wait_s, self._max_backoff_s = max_rows, max_wait_s, max_backoff_s
        self._clock = clock
        self._pending: dict[tuple[str, int], _Pending] = {}
        self._first_pending_at: float | None = None
        self._pending_rows = 0
        self.stats = SinkStats()
        self._metrics = metrics.create(registry or CollectorRegistry(), SINK_METRICS)

    # -- positions -------------------------------------------------------------------

    def _resume_offsets(self, topic: str) -> dict[int, int]:
        rows = self._store.query(
            f"SELECT kafka_partition, max(end_offset) FROM {self._store.database}.sink_offsets "  # noqa: S608
            f"WHERE consumer_group = '{self.group}' AND topic = '{topic}' GROUP BY kafka_partition"
        )
        return {int(p): int(end) + 1 for p, end in rows}

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        by_topic: dict[str, dict[int, int]] = {}
        for tp in partitions:
            if tp.topic not in by_topic:
                by_topic[tp.topic] = self._resume_offsets(tp.topic)
            resume = by_topic[tp.topic].get(tp.partition)
            if resume is not None:
                tp.offset = resume
                self.stats.resumed_from[(tp.topic, tp.partition)] = resume
        consumer.assign(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        try:
            self._flush(retry=False)
        except HistoryError as exc:  # the next owner resumes from sink_offsets
            log.warning("history sink: dropping unflushed batch on revoke (%s); it will be re-read", exc)
            self._pending.clear()
            self._first_pending_at = None
        consumer.unassign()

    # -- the loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event, idle_exit_s: float | None = None) -> SinkStats:
        """Consume until ``stop`` is set (or nothing arrived for ``idle_exit_s`` and every assigned
        partition is read to its end); flushes on exit."""
        self._consumer.subscribe(list(self._topics), on_assign=self._on_assign, on_revoke=self._on_revoke)
        last_message_at = self._clock()
        try:
            while not stop.is_set():
                messages = self._consumer.consume(num_messages=2000, timeout=0.2)
                for message in messages:
                    self._add(message)
                    if self._pending_rows >= self._max_rows:
                        self._flush(retry=True, stop=stop)
                if messages:
                    last_message_at = self._clock()
                if self._due():
                    self._flush(retry=True, stop=stop)
                if idle_exit_s is not None and self._clock() - last_message_at > idle_exit_s:
                    if self._ends.read_to_end(self._consumer, self._end_offsets):
                        break
                    last_message_at = self._clock() - idle_exit_s + 1.0  # look again in a second
            self._flush(retry=True, stop=stop)
        finally:
            self._consumer.close()
            self._end_offsets.close()
        return self.stats

    def _add(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                self._ends.saw_end(message)
            else:
                log.warning("history sink: consumer error %s", error)
            return
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        assert topic is not None and partition is not None and offset is not None
        pending = self._pending.setdefault((topic, partition), _Pending(offset, offset))
        pending.end = offset
        if self._first_pending_at is None:
            self._first_pending_at = self._clock()
        try:
            value = self._codec.decode(topic, message.value())
        except InvalidEvent:
            self.stats.skipped_invalid += 1
            self._metrics["ccpulse_history_invalid_skipped_total"].labels(topic).inc()
            return
        if topic == DEAD_LETTER_TOPIC:
            value = self._dead_letters.sanitise(value)
        row = event_row(topic, value, partition, offset, int(time.time()))
        if row is not None:  # None: a record history does not keep (a rolling-window snapshot)
            pending.rows.append(row)
            self._pending_rows += 1

    def _due(self) -> bool:
        if self._first_pending_at is None:
            return False
        waited = self._clock() - self._first_pending_at
        return self._pending_rows >= self._max_rows or waited >= self._max_wait_s

    # -- writing -------------------------------------------------------------------------

    def _flush(self, retry: bool, stop: threading.Event | None = None) -> None:
        if not self._pending:
            return
        backoff = 0.25
        while True:
            try:
                self._write(self._pending)
                break
            except HistoryError as exc:
                self.stats.write_failures += 1
                self._metrics["ccpulse_history_write_failures_total"].inc()
                if not retry or (stop is not None and stop.is_set()):
                    raise
                held = self._pending_rows
                log.error(
                    "history sink: ClickHouse write failed (%s); %d rows held, input paused, retry in %.1f s",
                    exc,
                    held,
                    backoff,
                )
                self._wait_paused(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
        self._commit([TopicPartition(t, p, batch.end + 1) for (t, p), batch in self._pending.items()])
        self.stats.batches += 1
        self._pending.clear()
        self._first_pending_at = None
        self._pending_rows = 0

    def _commit(self, offsets: list[TopicPartition]) -> None:
        """Commit the written batch's positions to Kafka: a hint, since (re)assignment resumes
        from sink_offsets. A refused commit (the group dropped this member after a long
        write, or its coordinator is failing over: UNKNOWN_MEMBER_ID, NOT_COORDINATOR...)
        must not stop the sink: the next poll rejoins and resumes from sink_offsets."""
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            self.stats.commit_failures += 1
            log.warning(
                "history sink: offset commit failed after a written batch (%s); resume uses sink_offsets", exc
            )

    def _write(self, pending: dict[tuple[str, int], _Pending]) -> None:
        db = self._store.database
        by_table: dict[str, list[tuple[Any, ...]]] = {}
        for (topic, _), batch in pending.items():
            by_table.setdefault(topic, []).extend(batch.rows)
        started = time.perf_counter()
        for topic, rows in by_table.items():
            table, columns = TABLE_OF_TOPIC[topic]
            self._store.insert(f"{db}.{table}", columns, rows)
        now = datetime.now(UTC).replace(microsecond=0)
        bookkeeping = [
            (self.group, t, p, b.start, b.end, len(b.rows), now) for (t, p), b in sorted(pending.items())
        ]
        self._store.insert(f"{db}.sink_offsets", OFFSET_COLUMNS, bookkeeping)
        written = sum(len(rows) for rows in by_table.values())
        self.stats.rows_written += written
        self._metrics["ccpulse_history_write_seconds"].observe(time.perf_counter() - started)
        self._metrics["ccpulse_history_batches_total"].inc()
        self._metrics["ccpulse_history_batch_rows"].observe(written)
        for topic, rows in by_table.items():
            self._metrics["ccpulse_history_rows_written_total"].labels(TABLE_OF_TOPIC[topic][0]).inc(
                len(rows)
            )

    def _wait_paused(self, seconds: float) -> None:
        assignment = self._consumer.assignment()
        if assignment:
            self._consumer.pause(assignment)
        deadline = self._clock() + seconds
        while self._clock() < deadline:
            message = self._consumer.poll(0.05)  # keeps the group membership alive
            if message is not None:  # not expected while paused; never drop one
                self._add(message)
        if assignment:
            self._consumer.resume(assignment)
