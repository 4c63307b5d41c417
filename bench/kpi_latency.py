"""Live latency of a KPI job at a fixed event rate: (a) event time -> state, (b) -> readable snapshot.

The job runs as a child process started at the end of the input topics; live events
(event time = Kafka timestamp = now) are produced at ``rate`` for ``seconds``; a
``read_committed`` consumer, assigned to the end of the job's snapshot topic before
the first event, notes when each snapshot becomes readable.

(a) comes from the job: the current worker's observer (``event_to_visible_seconds``,
sampled per consume batch, what /metrics reads at the next scrape), the Quix job's
per message time after its state update. (b) per event: the Quix job's snapshot keeps
the Kafka timestamp of the message that caused it (Quix's ``to_topic`` default), so
(b) = read time - that timestamp; the worker's snapshots carry their consume batch's
id (bench/kpi_paths.py), so (b) = read time of the batch's first snapshot - the event
time of each contact or survey message in that batch. Events of the first
``warmup_s`` are left out (the group joins while they are produced).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition

from streams.simulator import SimConfig, Simulation
from streams.simulator.output import materialise
from streams.wire.codec import Codec
from streams.wire.topics import AGENT_TOPIC, CONTACT_TOPIC, SURVEY_TOPIC

TOPIC_OF = {"ContactEvent": CONTACT_TOPIC, "AgentEvent": AGENT_TOPIC, "SurveyEvent": SURVEY_TOPIC}


class SnapshotReader(threading.Thread):
    """read_committed, from the topic's end: (read time, Kafka timestamp ms, bench-batch id)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.seen: list[tuple[float, int, int | None]] = []
        self.stop = threading.Event()
        self.ready = threading.Event()
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-latency-reader-{uuid.uuid4().hex[:6]}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,
            }
        )
        self._topic = topic

    def run(self) -> None:
        consumer = self._consumer
        metadata = consumer.list_topics(self._topic, timeout=30).topics[self._topic]
        # from the end; no watermark query (a topic created just before may still elect its leaders)
        parts = [TopicPartition(self._topic, p, OFFSET_END) for p in metadata.partitions]
        consumer.assign(parts)
        self.ready.set()
        while not self.stop.is_set():
            for message in consumer.consume(5000, 0.05):
                if message.error() is not None:
                    continue
                now = time.time()
                batch = None
                for name, value in message.headers() or []:
                    if name == "bench-batch":
                        batch = int(value)
                self.seen.append((now, message.timestamp()[1], batch))
        consumer.close()


def _percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    array = np.array(values) * 1000
    return {
        "n": len(values),
        "p50_ms": round(float(np.percentile(array, 50)), 1),
        "p99_ms": round(float(np.percentile(array, 99)), 1),
        "max_ms": round(float(array.max()), 1),
    }


def produce_live(bootstrap: str, rate: int, seconds: float) -> tuple[float, float]:
    """Live events at ``rate``; returns (start wall time, achieved rate)."""
    sim = Simulation(SimConfig(), seed=5, duration_s=3600)
    events = [materialise(item, sim.prefix).event for batch in sim.batches() for item in batch]
    codec = Codec.pinned()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1, "enable.idempotence": True})
    started_wall, started, sent, total = time.time(), time.perf_counter(), 0, int(rate * seconds)
    tag = uuid.uuid4().hex[:6]
    while sent < total:
        due = int((time.perf_counter() - started) * rate)
        while sent < min(due, total):
            event = events[sent % len(events)]
            now_ms = int(time.time() * 1000)
            live = dataclasses.replace(event, event_time_ms=now_ms, event_id=f"{event.event_id}-{tag}-{sent}")
            topic = TOPIC_OF[type(live).__name__]
            producer.produce(topic, codec.encode(topic, live), live.region.encode(), timestamp=now_ms)
            sent += 1
        producer.poll(0)
        time.sleep(0.001)
    achieved = sent / (time.perf_counter() - started)
    producer.flush(30)
    return started_wall, achieved


def measure(
    command: list[str],
    out: Path,
    bootstrap: str,
    snapshot_topic: str,
    rate: int,
    seconds: float,
    join_s: float,
    warmup_s: float = 3.0,
) -> dict[str, Any]:
    """Run the job ``command`` (it writes its samples to ``out`` and exits when idle)."""
    reader = SnapshotReader(bootstrap, snapshot_topic)
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        reader.start()
        reader.ready.wait(60)
        time.sleep(join_s)  # the child joins its group and is assigned (at the end of the inputs)
        started, achieved = produce_live(bootstrap, rate, seconds)
        child.wait(timeout=120 + seconds)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    time.sleep(1.0)
    reader.stop.set()
    reader.join(10)
    samples = json.loads(out.read_text()) if out.exists() else {}
    cutoff_ms = (started + warmup_s) * 1000
    if isinstance(samples, dict):  # the current worker: per batch event times, snapshots by batch id
        state_s = samples.get("a", [])
        first_read: dict[int, float] = {}
        for read_at, _ts, batch in reader.seen:
            if batch is not None and batch not in first_read:
                first_read[batch] = read_at
        readable = [
            first_read[int(b)] - t / 1000
            for b, times in samples.get("batches", {}).items()
            if int(b) in first_read
            for t in times
            if t >= cutoff_ms
        ]
    else:  # the Quix job: each snapshot carries the timestamp of the event that caused it
        state_s = samples
        readable = [read_at - ts / 1000 for read_at, ts, _b in reader.seen if ts >= cutoff_ms]
    return {
        "rate": rate,
        "achieved_rate": round(achieved),
        "seconds": seconds,
        "state": _percentiles(state_s),
        "readable": _percentiles(readable),
    }
