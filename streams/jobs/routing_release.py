"""When a partition's pending queue-state boundaries and routing decisions may be released.

Both wait for the partition's agent stream to pass their event time (or for its partition to be
read to the end the broker reports, after a grace for the producer's in-flight events), at most
``routing_max_wait_s`` of wall time (streams/jobs/routing_local.py, router.py). A quiet
contact stream read to its end lets the agent watermark move the boundaries on. A region's
queue-state records all go to one partition of cc.queue.state with a header giving how many the
region published for that boundary (docs/routing.md).
"""

from __future__ import annotations

import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from confluent_kafka import Producer, TopicPartition

from streams.engine.read_to_end import EndOffsets, position_at_end
from streams.jobs.router import BOUNDARY_SIZE_HEADER, Router
from streams.jobs.routing_local import capture_boundary, release_boundaries
from streams.jobs.state import PartitionState
from streams.wire.codec import Codec
from streams.wire.topics import AGENT_TOPIC, CONTACT_TOPIC, QUEUE_STATE_TOPIC

if TYPE_CHECKING:
    from streams.jobs.options import WorkerOptions


class EventTimeGate:
    def __init__(
        self, ends: EndOffsets, producer: Producer, codec: Codec, options: WorkerOptions, on_delivery: Any
    ) -> None:
        self._ends, self._producer, self._codec = ends, producer, codec
        self._options, self._delivered = options, on_delivery
        self._partitions: int | None = None
        self._quiet: dict[int, tuple[int, float]] = {}  # partition -> (boundary, wall time it was due)

    def release(self, states: Iterable[PartitionState], router: Router | None) -> int:
        """Publish the boundaries and make the decisions that can be; returns records published."""
        o, now, published = self._options, time.monotonic(), 0
        states = list(states)
        for state in states:
            ready = self.agent_ready(state)
            self._capture_if_quiet(state, now)
            for records in release_boundaries(state, ready, now, o.routing_max_wait_s):
                published += self._publish(records)
            if router is not None:
                router.release(state, ready, self._producer, self._delivered)
        if router is not None:  # the remote history a decision of these partitions may still read
            router.table.keep_from_ms = min(
                (
                    min([st.watermarks.get("contact", 0) - o.kpi.allowed_lateness_ms]
                        + [p["request"][-1] for p in st.pending_arrivals])
                    for st in states
                ),
                default=0,
            )  # fmt: skip
        return published

    def _capture_if_quiet(self, state: PartitionState, now: float) -> None:
        """A quiet contact stream: the agent stream passed a boundary the contact stream has not
        reached. The boundary is captured once the contact partition is read to its end, but
        not before the grace for the producer's in-flight events has passed since the boundary
        was first due (a contact event before it may still be on its way: without the grace a
        paced run captured a boundary a backlog run did not, and a decision read another EWT)."""
        o = self._options
        every, agent_wm = o.queue_state_every_ms, state.watermarks.get("agent", 0)
        due = agent_wm - agent_wm % every
        if due <= state.boundary_ms:
            self._quiet.pop(state.partition, None)
            return
        pending = self._quiet.get(state.partition)
        if pending is None or pending[0] <= state.boundary_ms:  # captured since by a contact event
            pending = self._quiet[state.partition] = (due, now)
        boundary, since = pending
        if now - since >= o.routing_caught_up_grace_s and self.read_to_end(state, CONTACT_TOPIC):
            capture_boundary(state, boundary, every, now)  # time moved on to the boundary due then
            del self._quiet[state.partition]

    def _publish(self, records: list[dict[str, Any]]) -> int:
        sizes = Counter(r["region"] for r in records)  # the table knows when a region's boundary is in
        for record in records:
            key = f"{record['region']}|{record['queue']}".encode()
            value = self._codec.encode(QUEUE_STATE_TOPIC, record)
            headers: list[tuple[str, str | bytes | None]] = [
                (BOUNDARY_SIZE_HEADER, str(sizes[record["region"]]))
            ]
            self._producer.produce(
                QUEUE_STATE_TOPIC, value, key, partition=self.partition_of(record["region"]),
                headers=headers, on_delivery=self._delivered,
            )  # fmt: skip
        return len(records)

    def partition_of(self, region: str) -> int:
        """All of a region's queue-state records on one partition, in the order produced: a reader
        that sees a region's later boundary complete has seen every earlier record (the
        idempotent producer leaves no gaps within a partition, also when killed)."""
        if self._partitions is None:
            topic = self._producer.list_topics(QUEUE_STATE_TOPIC, timeout=10).topics[QUEUE_STATE_TOPIC]
            self._partitions = max(1, len(topic.partitions))
        return zlib.crc32(region.encode()) % self._partitions

    def read_to_end(self, state: PartitionState, topic: str) -> bool:
        """Whether the partition of ``topic`` is read to the end offset the broker reports now."""
        if topic not in self._options.topics:
            return False
        tp = TopicPartition(topic, state.partition)
        return position_at_end(self._ends, tp, state.next_offsets.get(topic))

    def agent_ready(self, state: PartitionState) -> Callable[[int, float], bool]:
        """Whether agent states as of t are complete on this partition: the agent stream passed t,
        or (after a grace, for the producer's in-flight events) its partition is read to the end."""
        agent_wm, grace = state.watermarks.get("agent", 0), self._options.routing_caught_up_grace_s
        caught_up: list[bool] = []

        def ready(t: int, waited: float) -> bool:
            if agent_wm > t:
                return True
            if waited < grace:
                return False
            if not caught_up:
                caught_up.append(self.read_to_end(state, AGENT_TOPIC))
            return caught_up[0]

        return ready
