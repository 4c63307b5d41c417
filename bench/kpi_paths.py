"""The benchmark's measured paths as child processes, and reading their MINUTE snapshots back.

    python bench/kpi_paths.py raw    --bootstrap-servers H:P --expect N
    python bench/kpi_paths.py worker --bootstrap-servers H:P --group G [--expect N] [--idle-exit S]
                                     [--no-routing] [--latest --latency-out FILE]

Each prints one JSON line: events, t_first / t_last (wall clock, so that two processes
add up), max_rss_kb. One process per path keeps each path's peak RSS its own and
keeps the paths from sharing one interpreter's GIL with the benchmark's producer.
Live latency (worker): ``--latency-out`` gets event time -> state updated per sampled
event (the worker's own observer, what /metrics reads next), and per consume batch the
event times of its contact and survey messages; the batch's snapshots carry a
``bench-batch`` header so that the reader can tell when they became readable.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError
from peak_rss import peak_rss_kb  # bench/ is on sys.path

from streams.domain.errors import InvalidEvent
from streams.domain.regions import region_codes
from streams.jobs.worker import KpiWorker, WorkerOptions
from streams.wire.codec import Codec
from streams.wire.topics import CONTACT_TOPIC, INPUT_TOPICS, SNAPSHOT_TOPIC, SURVEY_TOPIC

COUNTER_FIELDS_SKIPPED = ("version", "emitted_at_ms")


def _result(events: int, t_first: float, t_last: float, **extra: Any) -> None:
    rss = peak_rss_kb()
    print(json.dumps({"events": events, "t_first": t_first, "t_last": t_last, "max_rss_kb": rss, **extra}))


def raw(bootstrap: str, expect: int) -> None:
    """confluent-kafka consume(10000) + codec decode, no processing: the ceiling."""
    codec = Codec.pinned(known_regions=region_codes())
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"bench-raw-{uuid.uuid4().hex[:6]}",
         "auto.offset.reset": "earliest"}
    )  # fmt: skip
    consumer.subscribe(list(INPUT_TOPICS))
    n, first = 0, 0.0
    while n < expect:
        messages = consumer.consume(10_000, 1.0)
        if messages and not first:
            first = time.time()
        for message in messages:
            try:
                codec.decode(message.topic(), message.value())  # type: ignore[arg-type, unused-ignore]
            except InvalidEvent:
                pass
        n += len(messages)
    last = time.time()
    consumer.close()
    _result(n, first, last)


class _StampingProducer:
    """Delegates to the worker's producer; snapshots get the consume batch's id as a header."""

    def __init__(self, producer: Any, batch: list[int]) -> None:
        self._producer, self._batch = producer, batch

    def produce(self, topic: str, *args: Any, **kwargs: Any) -> None:
        if topic == SNAPSHOT_TOPIC:
            kwargs["headers"] = [("bench-batch", str(self._batch[0]).encode())]
        self._producer.produce(topic, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)


def worker(args: argparse.Namespace) -> None:
    samples: list[float] = []
    batches: dict[int, list[int]] = {}
    batch = [0]

    def observe(name: str, value: Any) -> None:
        if name == "event_to_visible_seconds":
            samples.append(value)

    options = WorkerOptions(
        group_id=args.group, app_id=args.group, routing=not args.no_routing, transactional=args.transactions
    )
    if args.commit_interval is not None:
        options.commit_interval_s = args.commit_interval
    if args.latest:
        options = WorkerOptions(
            group_id=args.group, app_id=args.group, routing=not args.no_routing, poll_timeout_s=0.05,
            batch_size=2000, auto_offset_reset="latest", transactional=args.transactions,
            commit_interval_s=args.commit_interval or options.commit_interval_s,
        )  # fmt: skip
    kpi_worker = KpiWorker(
        {"bootstrap.servers": args.bootstrap_servers}, Codec.pinned(known_regions=region_codes()),
        options, observer=observe,
    )  # fmt: skip
    times: list[float] = []
    cpu: list[float] = []  # the process's CPU seconds (every thread: librdkafka's too) at the span's ends
    original = kpi_worker.loop._process

    def timed(messages: list[Any]) -> None:
        if not times:
            times.append(time.time())
            cpu.append(time.process_time())
            if args.latency_out:
                stamping = _StampingProducer(kpi_worker.loop.producer, batch)
                kpi_worker.loop.producer = stamping  # type: ignore[assignment, unused-ignore]
        if args.latency_out:
            batch[0] += 1
            batches[batch[0]] = [
                m.timestamp()[1]
                for m in messages
                if m.error() is None and m.topic() in (CONTACT_TOPIC, SURVEY_TOPIC)
            ]
        original(messages)
        times[1:] = [time.time()]
        cpu[1:] = [time.process_time()]

    kpi_worker.loop._process = timed  # type: ignore[method-assign, unused-ignore]
    stop = threading.Event()
    if args.expect:

        def stop_at_expect() -> None:
            while kpi_worker.stats.events < args.expect:
                time.sleep(0.05)
            stop.set()

        threading.Thread(target=stop_at_expect, daemon=True).start()
    stats = kpi_worker.run(stop, idle_exit_s=args.idle_exit)
    if args.latency_out:
        Path(args.latency_out).write_text(json.dumps({"a": samples, "batches": batches}))
    _result(stats.events, times[0] if times else 0.0, times[-1] if times else 0.0,
            snapshots=stats.snapshots, decisions=stats.decisions,
            cpu_s=round(cpu[-1] - cpu[0], 2) if cpu else 0.0)  # fmt: skip


def final_minutes(bootstrap: str, topic: str, codec: Codec, timeout_s: float = 120.0) -> dict[str, dict]:
    """MINUTE key -> the highest version's record without version/emission time (read_committed)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"bench-read-{uuid.uuid4().hex[:8]}",
         "auto.offset.reset": "earliest", "enable.auto.commit": False, "enable.partition.eof": True,
         "isolation.level": "read_committed"}
    )  # fmt: skip
    consumer.subscribe([topic])
    latest: dict[str, dict] = {}
    eof: set[int] = set()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for message in consumer.consume(10_000, 0.5):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        eof.add(int(message.partition()))  # type: ignore[arg-type, unused-ignore]
                    continue
                key = (message.key() or b"").decode()
                if "|MINUTE|" not in key:
                    continue
                value = codec.decode(SNAPSHOT_TOPIC, message.value())
                if key not in latest or value["version"] >= latest[key]["version"]:
                    latest[key] = value
            assigned = consumer.assignment()
            if assigned and len(eof) >= len(assigned):
                break
    finally:
        consumer.close()
    return {k: {f: v for f, v in r.items() if f not in COUNTER_FIELDS_SKIPPED} for k, r in latest.items()}


def mismatches(a: dict[str, dict], b: dict[str, dict]) -> list[str]:
    """Keys whose MINUTE counters differ (or exist on one side only), sorted."""
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", choices=("raw", "worker"))
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--group", default=f"bench-worker-{uuid.uuid4().hex[:6]}")
    parser.add_argument("--expect", type=int, default=0)
    parser.add_argument("--idle-exit", type=float, default=5.0)
    parser.add_argument("--no-routing", action="store_true")
    parser.add_argument("--transactions", action="store_true", help="the worker as deploy/ runs it")
    parser.add_argument("--commit-interval", type=float, default=None, help="transactional commits (s)")
    parser.add_argument("--latest", action="store_true")
    parser.add_argument("--latency-out", default=None)
    args = parser.parse_args()
    if args.path == "raw":
        raw(args.bootstrap_servers, args.expect)
    else:
        worker(args)


if __name__ == "__main__":
    main()
