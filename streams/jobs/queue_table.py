"""Every region's cc.queue.state, as routing reads it: the latest record of a queue at or before t.

``GlobalQueueTable`` reads every partition of cc.queue.state in a thread (no consumer
group: every worker sees every region), keeps a short history of records per
region|queue and each region's progress (docs/routing.md, "Other regions").

A decision reads the queues of one skill (its own queue and configured equivalents) of one
channel in every region, as of its event time. The table is indexed for that: per queue name,
the regions' histories, each a list of records with a parallel list of their ``as_of_ms`` (a
plain ``int`` list that ``bisect`` searches without a key function); a record read as of a
later complete boundary of its region is made once per record and boundary, not per decision.
``tests/unit/test_queue_table_index.py`` holds its answers to those of a scan of every history.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from bisect import bisect_left, bisect_right
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from streams.domain.errors import InvalidEvent
from streams.domain.events import Channel
from streams.domain.routing import QueueSnapshot
from streams.engine import clients
from streams.engine.read_to_end import watermarks
from streams.wire.codec import Codec
from streams.wire.topics import QUEUE_STATE_TOPIC

log = logging.getLogger("ccpulse.jobs.routing")

BOUNDARY_SIZE_HEADER = "ccpulse-boundary-size"  # records of the region published for the same as_of
QueueKey = tuple[str, str]  # region, queue


def snapshot_of(record: dict[str, Any]) -> QueueSnapshot:
    r = record
    return QueueSnapshot(
        r["region"], r["queue"], Channel(r["channel"]), frozenset(r["languages"]), r["contacts_in_queue"],
        r["agents_logged_in"], r["agents_ready"], r["free_chat_slots"], r["aht_seconds"],
        r["arrival_rate_per_s"], r["abandon_rate_per_s"], r["as_of_ms"],
    )  # fmt: skip


class _QueueHistory:
    """One queue's records in ``as_of`` order, with their ``as_of`` alone in ``times``."""

    __slots__ = ("records", "shifted", "times")

    def __init__(self) -> None:
        self.records: list[QueueSnapshot] = []
        self.times: list[int] = []
        # the last record read as of a later complete boundary: (record, that reading)
        self.shifted: tuple[QueueSnapshot, QueueSnapshot] | None = None

    def as_of(self, t: int, boundary: int | None) -> tuple[QueueSnapshot, QueueSnapshot] | None:
        """The latest record at or before ``t``, read as of ``boundary`` when that is newer (its
        region completed a boundary without a record of it: the queue did not change), and the
        record it was read from."""
        index = bisect_right(self.times, t)
        if not index:
            return None
        record = self.records[index - 1]
        if boundary is None or boundary <= record.as_of_ms:
            return record, record
        shifted = self.shifted
        if shifted is not None and shifted[0] is record and shifted[1].as_of_ms == boundary:
            return shifted[1], record
        reading = dataclasses.replace(record, as_of_ms=boundary)
        self.shifted = (record, reading)
        return reading, record


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
        self._history: dict[QueueKey, _QueueHistory] = {}
        self._by_name: dict[str, list[tuple[QueueKey, _QueueHistory]]] = {}  # queue -> its regions'
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
        as_of = snapshot.as_of_ms
        with self._lock:
            self._count(snapshot, boundary_size)
            history = self._history.get(key)
            if history is None:
                history = self._history[key] = _QueueHistory()
                self._by_name.setdefault(snapshot.queue, []).append((key, history))
            records, times = history.records, history.times
            if times and times[-1] >= as_of:
                index = bisect_left(times, as_of)
                if index < len(times) and times[index] == as_of:
                    records[index] = snapshot  # a record re-published after a restart: the same state
                else:
                    records.insert(index, snapshot)
                    times.insert(index, as_of)
                return
            records.append(snapshot)
            times.append(as_of)
            floor = max(min(as_of - self._history_ms, self.keep_from_ms), as_of - self._max_history_ms)
            if times[0] < floor:
                cut = max(0, bisect_left(times, floor) - 1)
                del records[:cut], times[:cut]

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
            del completed[: max(0, bisect_left(completed, floor) - 1)]
        for done in [k for k in self._arriving if k[0] == region and k[1] <= as_of]:
            del self._arriving[done]

    def as_of(
        self, t: int, channel: Channel, names: frozenset[str], regions: frozenset[str] | None = None,
        sources: dict[QueueKey, QueueSnapshot] | None = None,
    ) -> tuple[dict[QueueKey, QueueSnapshot], set[str]]:  # fmt: skip
        """The latest record at or before ``t`` of every queue of the channel named in ``names``
        (as of its region's latest complete boundary at or before ``t`` when that is newer: the
        queue did not change since), and which of ``regions`` (default: every region the table
        knows) have not published all their state as of ``t`` yet (a region without any record
        counts as not there yet). ``sources`` gets the record each reading was made from (the
        same object until the queue's next record: what depends on a record's content but not
        on its ``as_of`` may be computed once per such record)."""
        found: dict[QueueKey, QueueSnapshot] = {}
        boundaries: dict[str, int | None] = {}  # region -> its latest complete boundary at or before t
        with self._lock:
            for name in names:
                for key, history in self._by_name.get(name, ()):
                    if history.records[-1].channel is not channel:
                        continue
                    region = key[0]
                    if region in boundaries:
                        boundary = boundaries[region]
                    else:
                        completed = self._completed.get(region, ())
                        at = bisect_right(completed, t)
                        boundary = boundaries[region] = completed[at - 1] if at else None
                    reading = history.as_of(t, boundary)
                    if reading is not None:
                        found[key] = reading[0]
                        if sources is not None:
                            sources[key] = reading[1]
            progress = self._progress
            expected = regions if regions is not None else progress.keys()
            lagging = {r for r in expected if progress.get(r, -1) < t}
        return found, lagging

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
