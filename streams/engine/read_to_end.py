"""Reading Kafka partitions to their end: the one place that knows how.

Two questions come up everywhere in a stream job, and each has one answer here:

- "Give me what a partition holds now": ``read_to_end`` assigns the partitions from a
  start offset (``BEGINNING`` or the last ``n`` records) and yields every record until
  each is read to the end offset it had when the call started (or librdkafka's
  partition-EOF event says so). Restore reads
  checkpoints with it, ``ccpulse kpi show`` reads snapshots with it.
- "Has my live consumer read everything there is": ``PartitionEnds`` remembers the
  partition-EOF events of a running consumer and compares them with the broker's end
  offset now (``--idle-exit``); ``position_at_end`` asks the same of one partition and
  a known position (routing waiting for the agent stream). Both ask the broker through
  ``EndOffsets``, a consumer that never fetches (the live one answers only after its fetch).

``watermarks`` retries while a just-created topic's leaders settle (NOT_LEADER for about
a second on Apache Kafka).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from streams.engine import clients

BEGINNING = -2  # OFFSET_BEGINNING
_SETTLING = (  # a new topic's leaders are being elected: the wrapper does not flag these retriable
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
)


def watermarks(consumer: Consumer, tp: TopicPartition, timeout_s: float = 30.0) -> tuple[int, int]:
    """Low and high offsets from the broker; retried while a new topic's leaders settle."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=5, cached=False)
            return int(low), int(high)
        except KafkaException as exc:
            error = exc.args[0]
            settling = error.retriable() or error.code() in _SETTLING
            if not settling or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def partitions_of(consumer: Consumer, topic: str, timeout_s: float = 10.0) -> list[int]:
    metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
    if metadata is None or metadata.error is not None:
        msg = f"topic {topic} does not exist ({metadata.error if metadata else 'no metadata'})"
        raise RuntimeError(msg)
    return sorted(metadata.partitions)


def read_to_end(
    client_config: dict[str, Any],
    topic: str,
    partitions: list[int] | None = None,
    *,
    last: int | None = None,
    timeout_s: float = 60.0,
    extra: dict[str, Any] | None = None,
) -> Iterator[Message]:
    """Every record of ``topic``'s ``partitions`` (all when None) from the beginning, or only
    from the last ``last`` offsets, to the end offset each had when this started. A partition
    is done at that offset or at a partition-EOF event, whichever comes first: under a writer
    that never pauses EOF may never come (a clean-clone CI run timed out chasing it), and a
    transaction's commit marker or aborted records may sit just before the end, where only EOF
    or the next record tells that nothing more is readable. Records past a done partition's
    end are not yielded. Never joins a group (the group id is throw-away and nothing is
    committed). Raises after ``timeout_s`` rather than return less than the partitions held."""
    consumer = clients.consumer(
        {
            **client_config,
            "group.id": f"ccpulse-read-to-end-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            **(extra or {}),
        }
    )
    try:
        numbers = partitions_of(consumer, topic) if partitions is None else partitions
        starts, ends = [], {}
        for p in numbers:
            low, high = watermarks(consumer, TopicPartition(topic, p))
            if high > low:
                start = BEGINNING if last is None else max(low, high - last)
                starts.append(TopicPartition(topic, p, start))
                ends[p] = high
        if not starts:
            return
        consumer.assign(starts)
        pending = set(ends)
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                msg = f"timed out reading partitions {sorted(pending)} of {topic} to their end"
                raise TimeoutError(msg)
            for message in consumer.consume(5000, 0.5):
                error, partition = message.error(), int(message.partition())
                if error is None:
                    if partition in pending:
                        yield message
                        if int(message.offset()) >= ends[partition] - 1:
                            pending.discard(partition)
                elif error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(partition)
                else:
                    raise KafkaException(error)
    finally:
        consumer.close()


class EndOffsets:
    """The broker's low and high offsets now, asked on a consumer of their own that never
    fetches. A live consumer's ``get_watermark_offsets(cached=False)`` waits behind its own
    fetch long-poll on the same broker connection (a broker answers a connection's requests in
    order): up to ``fetch.wait.max.ms`` (500 ms) per partition once the topic is quiet.
    Measured here on Apache Kafka 4.1: 12 partitions took 6.0 s on the live consumer and
    0.01 s on this one; an idle exit over 36 partitions took 17 s, and a routing release on a
    quiet stream held the worker's loop for as long."""

    def __init__(self, client_config: dict[str, Any]) -> None:
        unrelated = ("group.", "partition.assignment", "enable.partition.eof", "auto.offset.reset")
        self._config = {k: v for k, v in client_config.items() if not k.startswith(unrelated)}
        self._consumer: Any = None

    def watermarks(self, tp: TopicPartition, timeout_s: float = 5.0) -> tuple[int, int]:
        """Raises KafkaException as ``get_watermark_offsets`` does."""
        if self._consumer is None:
            self._consumer = clients.consumer(
                {**self._config, "group.id": f"ccpulse-end-offsets-{uuid.uuid4().hex[:8]}",
                 "enable.auto.commit": False}
            )  # fmt: skip
        low, high = self._consumer.get_watermark_offsets(tp, timeout=timeout_s, cached=False)
        return int(low), int(high)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


class PartitionEnds:
    """Where each partition was last read to its end, from librdkafka's partition-EOF events
    (the consumer needs ``enable.partition.eof``). `--idle-exit` asks ``read_to_end`` before it
    exits, so "idle" means nothing is left to read, not a pause of a loaded machine (a slow
    group join or fetch used to end a run early under load)."""

    def __init__(self) -> None:
        self._end: dict[tuple[str, int], int] = {}

    def saw_end(self, message: Any) -> None:
        """Record a _PARTITION_EOF event (its offset is the end offset it reached)."""
        self._end[(str(message.topic()), int(message.partition()))] = int(message.offset())

    def read_to_end(self, consumer: Any, ends: EndOffsets, timeout_s: float = 5.0) -> bool:
        """True when ``consumer`` has an assignment and reached, on every assigned partition, the
        end offset the broker reports now (asked through ``ends``, not the busy consumer). False
        on a broker error (look again later). Tansu under-reports end offsets, so there this can
        only be True early, never hang."""
        try:
            assignment = consumer.assignment()
            if not assignment:
                return False
            for tp in assignment:
                end = self._end.get((tp.topic, tp.partition))
                if end is None:
                    return False
                _low, high = ends.watermarks(tp, timeout_s)
                if end < high:
                    return False
        except KafkaException:
            return False
        return True


def position_at_end(ends: EndOffsets, tp: TopicPartition, position: int | None) -> bool:
    """Whether ``position`` (the next offset to apply; None: nothing applied) is at the end
    offset the broker reports now (a cached high watermark is as old as the last fetch).
    False on a broker error: look again later."""
    try:
        low, high = ends.watermarks(tp, timeout_s=1.0)
    except KafkaException:
        return False
    return high >= 0 and (low if position is None else position) >= high
