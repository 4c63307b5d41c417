"""KPI worker throughput and latency on real Apache Kafka, with its baselines in the same run.

    .venv/bin/python bench/bench_kpi.py [--hours 6] [--latency-seconds 30] [--rate 5000] [--json] [--profile]

1. Starts a fresh single-node Apache Kafka, applies the topics, and writes `--hours`
   of simulated traffic for all 67 regions (with 0.1 % duplicates and late events).
2. Reads the same messages three ways, each from the start with its own group:
   raw ceiling (confluent-kafka consume(10000) + codec decode, no processing), a
   consume-only Faust agent (stream.take(10000, within=0.1)), and the full KPI worker
   (decode, dedup, KPI state, snapshots, checkpoints). Events/s from the first message.
3. Latency: live events (event time = now) produced at a fixed `--rate` for
   `--latency-seconds` while a worker runs; event time -> state updated (what
   /metrics reads at the next scrape) per event, p50/p99.
Figures are printed, never asserted. `--profile` adds the worker's top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import json
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Consumer, Producer
from rich.console import Console
from rich.table import Table

from streams.app.worker import INPUT_TOPICS, KpiWorker, WorkerOptions
from streams.codec import Codec
from streams.domain.errors import InvalidEvent
from streams.domain.regions import region_codes
from streams.records import AGENT_TOPIC, CONTACT_TOPIC, SURVEY_TOPIC
from streams.services.kafka import KafkaCluster
from streams.services.topics import apply_topics
from streams.simulator import SimConfig, Simulation, run
from streams.simulator.config import Faults
from streams.simulator.output import materialise

console = Console(stderr=True)


def raw_ceiling(bootstrap: str, expect: int) -> float:
    codec = Codec.pinned(known_regions=region_codes())
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench-raw", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe(list(INPUT_TOPICS))
    n, started = 0, 0.0
    while n < expect:
        messages = consumer.consume(10_000, 1.0)
        if messages and not started:
            started = time.perf_counter()
        for message in messages:
            try:
                codec.decode(message.topic(), message.value())  # type: ignore[arg-type]
            except InvalidEvent:
                pass
        n += len(messages)
    rate = n / (time.perf_counter() - started)
    consumer.close()
    return rate


def faust_consume_only(bootstrap: str, expect: int) -> float:
    command = [sys.executable, "-m", "streams.app.faust_baseline", "--bootstrap-servers", bootstrap]
    out = subprocess.run([*command, "--expect", str(expect)], capture_output=True, text=True, timeout=900)
    # Faust redirects stdout into its logger: the JSON may come with a log prefix, on stderr
    lines = (out.stdout + out.stderr).splitlines()
    found = [line[line.index('{"events"') :] for line in lines if '{"events"' in line]
    if not found:
        msg = f"the Faust baseline printed no result: {out.stderr[-2000:]}"
        raise RuntimeError(msg)
    return float(json.loads(found[-1].strip())["events_per_s"])


def full_worker(bootstrap: str, expect: int, profile: bool) -> tuple[float, Any, str, list[float]]:
    times: list[float] = []
    decision_latency: list[float] = []

    def observe(name: str, value: Any) -> None:
        if name == "routing_decision":
            decision_latency.append(value[1])

    worker = KpiWorker(
        {"bootstrap.servers": bootstrap},
        Codec.pinned(known_regions=region_codes()),
        WorkerOptions(group_id="bench-worker", app_id="bench-worker"),
        observer=observe,
    )
    original = worker._process

    def timed(messages: list[Any]) -> None:
        if not times:
            times.append(time.perf_counter())
        original(messages)
        times[1:] = [time.perf_counter()]

    worker._process = timed  # type: ignore[method-assign]
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    stats = worker.run(threading.Event(), idle_exit_s=3.0)
    report = ""
    if profiler:
        profiler.disable()
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(15)
        report = buffer.getvalue()
    if stats.events != expect:
        console.print(f"[yellow]worker saw {stats.events} of {expect} events[/yellow]")
    return stats.events / (times[-1] - times[0]), stats, report, decision_latency


def latency(bootstrap: str, rate: int, seconds: float) -> dict[str, float]:
    """Live events at a fixed rate; per-event event time -> applied, from the worker's observer."""
    samples: list[float] = []
    decisions: list[float] = []

    def observe(name: str, value: Any) -> None:
        if name == "event_to_visible_seconds":
            samples.append(value)
        elif name == "routing_decision":
            decisions.append(value[1])

    sim = Simulation(SimConfig(), seed=5, duration_s=3600)
    events = [materialise(item, sim.prefix).event for batch in sim.batches() for item in batch]
    codec = Codec.pinned()
    worker = KpiWorker(
        {"bootstrap.servers": bootstrap},
        Codec.pinned(known_regions=region_codes()),
        WorkerOptions(
            group_id="bench-latency",
            app_id="bench-latency",
            poll_timeout_s=0.05,
            batch_size=2000,
            auto_offset_reset="latest",
        ),  # fmt: skip
        observer=observe,
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    time.sleep(8)  # join the group and restore
    samples.clear()
    decisions.clear()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1, "enable.idempotence": True})
    topic_of = {"ContactEvent": CONTACT_TOPIC, "AgentEvent": AGENT_TOPIC, "SurveyEvent": SURVEY_TOPIC}
    started, sent = time.perf_counter(), 0
    total = int(rate * seconds)
    while sent < total:
        due = int((time.perf_counter() - started) * rate)
        while sent < min(due, total):
            event = events[sent % len(events)]
            now_ms = int(time.time() * 1000)
            live = dataclasses.replace(event, event_time_ms=now_ms, event_id=f"{event.event_id}-{sent}")
            topic = topic_of[type(live).__name__]
            producer.produce(topic, codec.encode(topic, live), live.region.encode(), timestamp=now_ms)
            sent += 1
        producer.poll(0)
        time.sleep(0.001)
    producer.flush(30)
    time.sleep(3)
    stop.set()
    thread.join(60)
    values = np.array(samples) if samples else np.array([float("nan")])
    return {
        "rate": rate, "seconds": seconds, "samples": len(samples),
        "p50_s": float(np.percentile(values, 50)), "p99_s": float(np.percentile(values, 99)),
        "max_s": float(values.max()), "achieved_rate": sent / (time.perf_counter() - started - 3),
        "decisions": len(decisions),
        "decision_p50_ms": float(np.percentile(decisions, 50)) * 1000 if decisions else None,
        "decision_p99_ms": float(np.percentile(decisions, 99)) * 1000 if decisions else None,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--rate", type=int, default=5_000)
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = KafkaCluster(Path(tmp) / "kafka", nodes=1).start()
        try:
            bootstrap = cluster.bootstrap_servers
            apply_topics(bootstrap)
            console.print(f"simulating {args.hours} h of 67 regions into Kafka ...")
            busy = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)  # 09:00 in Moscow
            start = busy - timedelta(days=1)
            faults = Faults(duplicate=0.001, late=0.001, late_max_s=300)
            summary = run(duration_s=args.hours * 3600, seed=1, out="kafka", bootstrap_servers=bootstrap,
                          start=start, faults=faults)  # fmt: skip
            expect = summary.messages
            console.print(f"{expect:,} messages; raw ceiling ...")
            raw = raw_ceiling(bootstrap, expect)
            console.print("Faust consume-only agent ...")
            faust_rate = faust_consume_only(bootstrap, expect)
            console.print("full KPI worker ...")
            worker_rate, stats, report, decision_latency = full_worker(bootstrap, expect, args.profile)
            worker_seconds = stats.events / worker_rate
            console.print(f"latency at {args.rate}/s for {args.latency_seconds} s ...")
            lat = latency(bootstrap, args.rate, args.latency_seconds)
        finally:
            cluster.stop()
    result = {
        "messages": expect,
        "raw_ceiling_events_per_s": round(raw),
        "faust_consume_only_events_per_s": round(faust_rate),
        "kpi_worker_events_per_s": round(worker_rate),
        "worker_vs_faust": round(worker_rate / faust_rate, 3),
        "worker_vs_raw": round(worker_rate / raw, 3),
        "worker_checkpoints": stats.checkpoints,
        "worker_snapshots": stats.snapshots,
        "decisions": stats.decisions,
        "decisions_per_s": round(stats.decisions / worker_seconds),
        "decision_latency_p50_ms": round(float(np.percentile(decision_latency, 50)) * 1000, 1),
        "decision_latency_p99_ms": round(float(np.percentile(decision_latency, 99)) * 1000, 1),
        "latency": lat,
    }
    if args.json:
        print(json.dumps(result))
    else:
        table = Table(title=f"KPI worker on Apache Kafka, {expect:,} messages")
        table.add_column("path")
        table.add_column("events/s", justify="right")
        table.add_column("vs raw", justify="right")
        for label, value in (("raw ceiling (confluent-kafka + fastavro decode)", raw),
                             ("Faust consume-only agent (take 10k)", faust_rate),
                             ("full KPI worker", worker_rate)):  # fmt: skip
            table.add_row(label, f"{value:,.0f}", f"{value / raw:.2f}")
        Console().print(table)
        Console().print(
            f"worker / Faust consume-only: {worker_rate / faust_rate:.2f}; "
            f"latency at {lat['achieved_rate']:,.0f}/s: p50 {lat['p50_s'] * 1000:.0f} ms, "
            f"p99 {lat['p99_s'] * 1000:.0f} ms, max {lat['max_s'] * 1000:.0f} ms ({lat['samples']:,} samples)"
        )
        Console().print(
            f"routing: {stats.decisions:,} decisions at {result['decisions_per_s']:,}/s within the full job; "
            f"ARRIVED consumed -> decision produced p50 {result['decision_latency_p50_ms']} ms, "
            f"p99 {result['decision_latency_p99_ms']} ms (batches of up to 10k during the replay)"
        )
        if lat["decisions"]:
            Console().print(
                f"routing live at {lat['achieved_rate']:,.0f} events/s: {lat['decisions']:,} decisions, "
                f"p50 {lat['decision_p50_ms']:.0f} ms, p99 {lat['decision_p99_ms']:.0f} ms"
            )
        if report:
            Console().print(report)


if __name__ == "__main__":
    main()
