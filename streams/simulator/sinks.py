"""Where simulated messages go: a record file (streams/wire/record_file.py) or Kafka.

``Pacer`` spaces messages in wall-clock time: real time (speed 1), accelerated
(speed 60 = one simulated hour per minute) or not at all (speed None). Clock and
sleep are injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from streams.engine.partitioner import PARTITIONER as PARTITIONER
from streams.engine.partitioner import partition_of as partition_of
from streams.wire.kafka_config import KafkaSecurity, client_config
from streams.wire.record_file import EncodedRecord
from streams.wire.record_file import FileSink as FileSink  # re-exported: a sink like KafkaSink


class Sink(Protocol):
    def write(self, record: EncodedRecord) -> None: ...

    def write_many(self, records: Iterable[EncodedRecord]) -> None: ...

    def close(self) -> None: ...


class KafkaSink:
    """confluent-kafka producer, acks=all, idempotent, message timestamp = event time, key = region.

    Idempotence is what keeps a partition in event order when a send is retried (without
    it, a first batch refused while a new topic's leader settles lands after later
    batches: seen here as an hour of events arriving ~1 h late). Tansu cannot do it
    (InitProducerId fails): pass ``idempotent=False`` there.

    Delivery reports come back only for failures (``delivery.report.only.error``): a
    Python callback per message would cost more than the rest of the path."""

    def __init__(
        self,
        bootstrap_servers: str,
        idempotent: bool = True,
        security: KafkaSecurity | None = None,
        **config: Any,
    ) -> None:
        from confluent_kafka import Producer

        self._errors: list[str] = []
        self._producer = Producer(
            client_config(bootstrap_servers, security)
            | {
                "acks": "all",
                "enable.idempotence": idempotent,
                "partitioner": PARTITIONER,
                "linger.ms": 50,
                "batch.num.messages": 10_000,
                "queue.buffering.max.messages": 500_000,
                "compression.type": "lz4",
                "delivery.report.only.error": True,
                "on_delivery": self._on_delivery,
            }
            | config
        )
        self.count = 0

    def _on_delivery(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._errors.append(str(err))

    def write(self, record: EncodedRecord) -> None:
        self.write_many((record,))

    def write_many(self, records: Iterable[EncodedRecord]) -> None:
        produce, poll = self._producer.produce, self._producer.poll
        for topic, key, value, timestamp_ms in records:
            while True:
                try:
                    produce(topic, value, key, timestamp=timestamp_ms)
                    break
                except BufferError:  # local queue full: let deliveries drain
                    poll(0.05)
            self.count += 1
        poll(0)

    def close(self, timeout_s: float = 60.0) -> None:
        remaining = self._producer.flush(timeout_s)
        if remaining or self._errors:
            msg = f"{remaining} message(s) undelivered after {timeout_s} s; errors: {self._errors[:3]}"
            raise RuntimeError(msg)


class Pacer:
    """Blocks until a message's event time is due in wall time at ``speed`` x real time."""

    def __init__(
        self,
        speed: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if speed is not None and speed <= 0:
            msg = f"speed {speed} must be > 0 (or None for as fast as possible)"
            raise ValueError(msg)
        self.speed, self._clock, self._sleep = speed, clock, sleep
        self._origin: tuple[float, int] | None = None

    def hurry(self) -> None:
        """From now on as fast as possible (another thread may call it): what is left of a
        paced run goes out unpaced, e.g. once a test's faults are done. The messages and
        their event times do not change, only when they are sent."""
        self.speed = None

    def due_in(self, timestamp_ms: int) -> float:
        """Seconds until a message with this event time is due (<= 0: now); the first call sets the origin."""
        if self.speed is None:
            return 0.0
        if self._origin is None:
            self._origin = (self._clock(), timestamp_ms)
            return 0.0
        wall0, sim0 = self._origin
        return wall0 + (timestamp_ms - sim0) / 1000.0 / self.speed - self._clock()

    def wait(self, timestamp_ms: int) -> None:
        if self.speed is None:
            return
        if self._origin is None:
            self._origin = (self._clock(), timestamp_ms)
            return
        wall0, sim0 = self._origin
        ahead = wall0 + (timestamp_ms - sim0) / 1000.0 / self.speed - self._clock()
        if ahead > 0.002:
            self._sleep(ahead)
