"""The published staffing plan as a global table in the worker (cc.staffing.plan, every partition).

Like routing's ``GlobalQueueTable`` it reads the topic without a consumer group, from the
beginning of every partition, in a thread: each worker sees the whole plan, because the
plan topic is keyed by region|channel|interval, not co-partitioned with the input. Per
region x channel and interval it keeps the record with the highest ``published_at_ms``
(a republished interval replaces the earlier one, as compaction will; a late retry of an
older publication does not win). ``planned(region, channel, at_ms)`` answers the planned
agents of the 15-minute interval holding ``at_ms``; the collector asks at the partition's
event time, as staffed and required are measured (docs/metrics.md).

A missing topic (a cluster whose topics were not applied since the plan topic existed) is
not an error: the table stays empty and looks again every ``retry_s``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from streams.domain.errors import InvalidEvent
from streams.domain.shift_plan import INTERVAL_MS
from streams.engine import clients
from streams.wire.codec import Codec
from streams.wire.topics import PLAN_TOPIC

log = logging.getLogger("ccpulse.jobs.plan")
DAY_MS = 86_400_000


class GlobalPlanTable:
    def __init__(self, client_config: dict[str, Any], codec: Codec, keep_ms: int = 2 * DAY_MS) -> None:
        self._client, self._codec = client_config, codec
        # (region, channel) -> interval start -> (published_at_ms, planned agents)
        self._plans: dict[tuple[str, str], dict[int, tuple[int, int]]] = {}
        self._lock = threading.Lock()
        self._keep_ms = keep_ms  # intervals this far behind the newest asked time are dropped
        self._floor_ms = 0
        self._stop, self.ready = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="staffing-plan-table", daemon=True)
        self.records = 0  # records applied (for tests and the summary)

    def start(self) -> GlobalPlanTable:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def wait_ready(self, timeout_s: float) -> bool:
        """True once the topic was read to the end offsets it had when the table started."""
        return self.ready.wait(timeout_s)

    def add(self, record: dict[str, Any]) -> None:
        start, published = int(record["interval_start_ms"]), int(record["published_at_ms"])
        key = (str(record["region"]), str(record["channel"]))
        with self._lock:
            self.records += 1
            if start + INTERVAL_MS <= self._floor_ms:
                return
            intervals = self._plans.setdefault(key, {})
            current = intervals.get(start)
            if current is None or published >= current[0]:  # equal: the later record of the key
                intervals[start] = (published, int(record["planned_agents"]))

    def planned(self, region: str, channel: str, at_ms: int) -> int | None:
        """Planned agents of the interval holding ``at_ms``; None when no plan covers it."""
        start = at_ms - at_ms % INTERVAL_MS
        with self._lock:
            if at_ms - self._keep_ms > self._floor_ms + DAY_MS:  # at most one sweep a day of event time
                self._evict(at_ms - self._keep_ms)
            found = self._plans.get((region, channel), {}).get(start)
        return None if found is None else found[1]

    def _evict(self, floor_ms: int) -> None:
        self._floor_ms = floor_ms
        for intervals in self._plans.values():
            for start in [s for s in intervals if s + INTERVAL_MS <= floor_ms]:
                del intervals[start]

    def _partitions(self, consumer: Consumer) -> tuple[list[int], dict[int, int]] | None:
        """The topic's partitions and the end offsets of the non-empty ones; None when absent."""
        try:
            topic = consumer.list_topics(PLAN_TOPIC, timeout=10).topics.get(PLAN_TOPIC)
            if topic is None or topic.error is not None or not topic.partitions:
                return None
            ends = {}
            for p in topic.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(PLAN_TOPIC, p), timeout=10)
                if high > low:
                    ends[p] = high
            return sorted(topic.partitions), ends
        except KafkaException as exc:
            log.info("staffing plan table: %s not readable yet (%s)", PLAN_TOPIC, exc)
            return None

    def _run(self, retry_s: float = 5.0) -> None:
        group = f"ccpulse-plan-table-{uuid.uuid4().hex[:8]}"  # never joins: assign() only
        consumer = clients.consumer({**self._client, "group.id": group, "enable.auto.commit": False})
        try:
            found = self._partitions(consumer)
            while found is None:
                log.warning(
                    "staffing plan table: no topic %s; ccpulse_planned_agents stays empty", PLAN_TOPIC
                )
                if self._stop.wait(retry_s):
                    return
                found = self._partitions(consumer)
            partitions, ends = found
            consumer.assign([TopicPartition(PLAN_TOPIC, p, -2) for p in partitions])  # -2: beginning
            if not ends:
                self.ready.set()
            while not self._stop.is_set():
                for message in consumer.consume(1000, 0.2):
                    error = message.error()
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            log.warning("staffing plan table: %s", error)
                        continue
                    partition, offset = message.partition() or 0, message.offset() or 0
                    if not self.ready.is_set() and offset + 1 >= ends.get(partition, 0):
                        ends.pop(partition, None)
                        if not ends:
                            self.ready.set()
                    if message.value() is None:
                        continue  # a tombstone: nothing to plan (compaction removes the key)
                    try:
                        self.add(self._codec.decode(PLAN_TOPIC, message.value()))
                    except InvalidEvent as exc:
                        log.warning("staffing plan table: skipping an undecodable record (%s)", exc.reason)
        finally:
            consumer.close()
