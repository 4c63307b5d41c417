"""The memory broker's Consumer: confluent_kafka.Consumer's methods and semantics that the
engine uses, on a `MemoryCluster` (streams/engine/memory_cluster.py).

As librdkafka does: rebalance callbacks (eager, range assignor: revoke everything, then
assign the new plan once every member revoked) are served from inside ``consume``/``poll``
and ``close``; when ``on_assign``/``on_revoke`` does not call ``assign``/``unassign`` itself
it is done after the callback; ``consume(n, timeout)`` waits until n messages or the
timeout; with ``enable.partition.eof`` one _PARTITION_EOF event follows the last message
each time a partition's end is reached (also on an empty partition just assigned).
Messages are real ``confluent_kafka.Message`` objects, errors real ``KafkaError``s.
"""

from __future__ import annotations

import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    OFFSET_STORED,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from streams.engine.memory_cluster import MemoryCluster, cluster, kafka_error, metadata

RESETS = {"earliest": "earliest", "smallest": "earliest", "beginning": "earliest",
          "latest": "latest", "largest": "latest", "end": "latest", "error": "error"}  # fmt: skip
Callback = Callable[[Any, list[TopicPartition]], None]
_SLICE_S = 0.05  # group state is looked at this often while consume() waits


def cluster_of(config: dict[str, Any]) -> MemoryCluster:
    servers = str(config.get("bootstrap.servers", ""))
    if not servers.startswith("memory://") or len(servers) == len("memory://"):
        msg = f"bootstrap.servers {servers!r}: the memory broker expects memory://<name>"
        raise ValueError(msg)
    return cluster(servers.removeprefix("memory://"))


@dataclass
class _Fetch:
    next: int  # the next offset to hand out
    app: int = OFFSET_INVALID  # position(): after the last message handed out
    eof_at: int | None = None  # the end offset an EOF event was given for
    paused: bool = False


class Consumer:
    def __init__(self, config: dict[str, Any]) -> None:
        self._cluster = cluster_of(config)
        self._group: str | None = config.get("group.id")
        reset = str(config.get("auto.offset.reset", "largest"))
        if reset not in RESETS:
            msg = f"auto.offset.reset {reset!r}: expected one of {sorted(RESETS)}"
            raise ValueError(msg)
        self._reset = RESETS[reset]
        strategy = str(config.get("partition.assignment.strategy", "range,roundrobin"))
        if strategy.split(",")[0].strip() != "range":
            msg = f"partition.assignment.strategy {strategy!r}: the memory broker implements range only"
            raise ValueError(msg)
        self._eof = _flag(config.get("enable.partition.eof", False))
        self._auto_commit = _flag(config.get("enable.auto.commit", True))
        self._auto_commit_s = float(config.get("auto.commit.interval.ms", 5000)) / 1000
        self._max_poll_s = float(config.get("max.poll.interval.ms", 300_000)) / 1000
        self._member_id = f"{config.get('client.id', 'rdkafka')}-{uuid.uuid4()}"
        self._fetch: dict[tuple[str, int], _Fetch] = {}
        self._topics: tuple[str, ...] | None = None
        self._on_assign: Callback | None = None
        self._on_revoke: Callback | None = None
        self._generation = self._revoked_for = 0
        self._group_assigned: list[tuple[str, int]] | None = None
        self._assign_called = False
        self._last_auto_commit = time.monotonic()
        self._leave: weakref.finalize | None = None
        self._closed = False

    # -- subscription and the rebalance protocol ------------------------------------------------

    def subscribe(
        self, topics: list[str], on_assign: Callback | None = None, on_revoke: Callback | None = None,
        on_lost: Callback | None = None,
    ) -> None:  # fmt: skip
        self._check_open()
        if self._group is None:
            raise kafka_error(KafkaError._INVALID_ARG, "subscribe needs group.id")
        if any(t.startswith("^") for t in topics):
            msg = f"topic patterns ({topics}) are not implemented by the memory broker"
            raise ValueError(msg)
        self._on_assign, self._on_revoke = on_assign, on_revoke or on_lost
        self._topics = tuple(topics)
        self._cluster.join(self._group, self._member_id, self._topics, self._max_poll_s)
        if self._leave is None:  # a consumer dropped without close() leaves its group, as on dealloc
            self._leave = weakref.finalize(self, self._cluster.leave, self._group, self._member_id)

    def memberid(self) -> str:
        return self._member_id

    def _serve_group(self) -> None:
        if self._topics is None or self._group is None:
            return
        generation, ready = self._cluster.group_state(self._group, self._member_id)
        if generation == -1:  # dropped for not polling in time: rejoin
            self._revoke()
            self._cluster.join(self._group, self._member_id, self._topics, self._max_poll_s)
            generation, ready = self._cluster.group_state(self._group, self._member_id)
        if generation == self._generation:
            return
        if self._revoked_for != generation:
            self._revoke()
            self._revoked_for = generation
            generation, ready = self._cluster.group_state(self._group, self._member_id, acked=generation)
        if not ready or generation != self._revoked_for:
            return
        plan = self._cluster.plan_of(self._group, self._member_id, generation)
        if plan is None:
            return
        self._generation, self._group_assigned = generation, plan
        partitions = [TopicPartition(t, p) for t, p in plan]
        self._assign_called = False
        if self._on_assign is not None:
            self._on_assign(self, partitions)
        if not self._assign_called:
            self.assign(partitions)

    def _revoke(self) -> None:
        if not self._group_assigned:
            self._group_assigned = None
            return
        partitions = [TopicPartition(t, p) for t, p in self._group_assigned]
        self._group_assigned = None
        if self._auto_commit:
            self._commit_positions(quiet=True)
        self._assign_called = False
        if self._on_revoke is not None:
            self._on_revoke(self, partitions)
        if not self._assign_called:
            self.unassign()

    # -- assignment and positions -----------------------------------------------------------------

    def assign(self, partitions: list[TopicPartition]) -> None:
        self._check_open()
        self._assign_called = True
        self._fetch = {(tp.topic, tp.partition): _Fetch(self._resolve(tp)) for tp in partitions}

    def unassign(self) -> None:
        self._check_open()
        self._assign_called = True
        self._fetch = {}

    def assignment(self) -> list[TopicPartition]:
        self._check_open()
        return [TopicPartition(t, p) for t, p in self._fetch]

    def _resolve(self, tp: TopicPartition) -> int:
        low, high = self._cluster.watermarks(tp.topic, tp.partition)
        offset = tp.offset
        if offset in (OFFSET_STORED, OFFSET_INVALID) and self._group is not None:
            offset = self._cluster.committed.get((self._group, tp.topic, tp.partition), OFFSET_INVALID)
        if offset == OFFSET_BEGINNING:
            return low
        if offset == OFFSET_END:
            return high
        if low <= offset <= high:
            return offset
        if self._reset == "error":
            raise kafka_error(KafkaError._AUTO_OFFSET_RESET, f"{tp.topic} [{tp.partition}]: no offset")
        return low if self._reset == "earliest" else high

    def pause(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            if (tp.topic, tp.partition) in self._fetch:
                self._fetch[(tp.topic, tp.partition)].paused = True

    def resume(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            if (tp.topic, tp.partition) in self._fetch:
                self._fetch[(tp.topic, tp.partition)].paused = False

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        self._check_open()
        return [
            TopicPartition(tp.topic, tp.partition, self._app_offset(tp.topic, tp.partition))
            for tp in partitions
        ]

    def _app_offset(self, topic: str, partition: int) -> int:
        fetch = self._fetch.get((topic, partition))
        return fetch.app if fetch is not None else OFFSET_INVALID

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float | None = None, cached: bool = False
    ) -> tuple[int, int]:
        self._check_open()
        if cached and (partition.topic, partition.partition) not in self._fetch:
            return OFFSET_INVALID, OFFSET_INVALID  # nothing fetched: librdkafka knows nothing yet
        return self._cluster.watermarks(partition.topic, partition.partition)

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:

        self._check_open()
        return metadata(self._cluster, topic)

    # -- offsets ------------------------------------------------------------------------------------

    def commit(
        self, message: Message | None = None, offsets: list[TopicPartition] | None = None,
        asynchronous: bool = True,
    ) -> list[TopicPartition] | None:  # fmt: skip
        self._check_open()
        if self._group is None:
            raise kafka_error(KafkaError._INVALID_ARG, "commit needs group.id")
        if offsets is not None:
            chosen = [TopicPartition(tp.topic, tp.partition, tp.offset) for tp in offsets]
        elif message is not None:
            chosen = [TopicPartition(str(message.topic()), int(message.partition() or 0),
                                     int(message.offset() or 0) + 1)]  # fmt: skip
        else:
            chosen = self._commit_positions(quiet=False)
        self._cluster.commit(self._group, chosen)
        return None if asynchronous else chosen

    def _commit_positions(self, quiet: bool) -> list[TopicPartition]:
        positions = [TopicPartition(t, p, f.app) for (t, p), f in self._fetch.items() if f.app >= 0]
        if not positions and not quiet:
            raise kafka_error(KafkaError._NO_OFFSET, "Local: No offset stored")
        if quiet and self._group is not None:
            self._cluster.commit(self._group, positions)
        return positions

    def committed(
        self, partitions: list[TopicPartition], timeout: float | None = None
    ) -> list[TopicPartition]:
        self._check_open()
        group = self._group or ""
        return [
            TopicPartition(tp.topic, tp.partition,
                           self._cluster.committed.get((group, tp.topic, tp.partition), OFFSET_INVALID))
            for tp in partitions
        ]  # fmt: skip

    # -- consuming ----------------------------------------------------------------------------------

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        self._check_open()
        if not 1 <= num_messages <= 1_000_000:
            msg = f"num_messages {num_messages} must be between 1 and 1000000 (1M)"
            raise ValueError(msg)
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        out: list[Message] = []
        while True:
            self._serve_group()
            self._maybe_auto_commit()
            with self._cluster.changed:
                out += self._take(num_messages - len(out))
                left = None if deadline is None else deadline - time.monotonic()
                if len(out) >= num_messages or (left is not None and left <= 0):
                    return out
                self._cluster.changed.wait(_SLICE_S if left is None else min(left, _SLICE_S))

    def poll(self, timeout: float | None = None) -> Message | None:
        messages = self.consume(1, -1 if timeout is None else timeout)
        return messages[0] if messages else None

    def _take(self, limit: int) -> list[Message]:
        out: list[Message] = []
        for (topic, partition), fetch in list(self._fetch.items()):
            if fetch.paused or len(out) >= limit:
                continue
            for record in self._cluster.read(topic, partition, fetch.next, limit - len(out)):
                out.append(Message(topic, partition, fetch.next, record.key, record.value,
                                   list(record.headers) if record.headers is not None else None,
                                   None, record.timestamp))  # fmt: skip
                fetch.next += 1
                fetch.app = fetch.next
            if self._eof and len(out) < limit and fetch.eof_at != fetch.next:
                if fetch.next >= self._cluster.watermarks(topic, partition)[1]:
                    fetch.eof_at = fetch.next
                    reason = (f"Fetch from broker 1 reached end of partition at offset {fetch.next} "
                              f"(HighwaterMark {fetch.next})")  # fmt: skip
                    # librdkafka puts the reason in the event's value too
                    out.append(Message(topic, partition, fetch.next, None, reason.encode(), None,
                                       KafkaError(KafkaError._PARTITION_EOF, reason)))  # fmt: skip
        return out

    def _maybe_auto_commit(self) -> None:
        if self._auto_commit and self._group is not None:
            if time.monotonic() - self._last_auto_commit >= self._auto_commit_s:
                self._last_auto_commit = time.monotonic()
                self._commit_positions(quiet=True)

    # -- closing ------------------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        if self._topics is not None and self._group is not None:
            self._revoke()  # librdkafka serves the revoke callback from close()
            if self._leave is not None:
                self._leave()
        elif self._auto_commit and self._group is not None:
            self._commit_positions(quiet=True)
        self._fetch = {}
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            msg = "Consumer closed"
            raise RuntimeError(msg)


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() in ("true", "1")


__all__ = ["Consumer", "KafkaException", "cluster_of"]
