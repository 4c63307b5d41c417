"""Processes and measurements for bench_soak.py: `ccpulse worker` processes (start, /metrics,
RSS from /proc, stop by PID), the group's state and lag in messages, histogram quantiles."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupState, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families

from streams.wire.topics import INPUT_TOPICS

GROUP = "ccpulse-soak"


@dataclass
class Scrape:
    at: float
    seconds: float  # how long the worker took to answer (its collector holds the state lock)
    lag_s: dict[str, float]
    events_in: float
    dead_letters: float
    buckets: dict[float, float]


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path
    url: str = ""
    rss_mb: list[float] = field(default_factory=list)

    def scrape(self) -> Scrape:
        started = time.perf_counter()
        with urllib.request.urlopen(self.url, timeout=30) as response:
            text = response.read().decode()
        out = Scrape(time.time(), time.perf_counter() - started, {}, 0.0, 0.0, {})
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "ccpulse_consumer_lag_seconds":
                    out.lag_s[s.labels["topic"]] = s.value
                elif s.name == "ccpulse_events_in_total":
                    out.events_in += s.value
                elif s.name == "ccpulse_dead_letters_total":
                    out.dead_letters += s.value
                elif s.name == "ccpulse_event_to_visible_seconds_bucket":
                    out.buckets[float(s.labels["le"])] = s.value
        return out

    def memory_mb(self, key: str = "VmRSS") -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no {key} for pid {self.process.pid}")

    def summary(self) -> dict[str, Any]:
        lines = [x for x in self.log.read_text().splitlines() if x.startswith('{"event": "stopped"')]
        return json.loads(lines[-1]) if lines else {}


def start_workers(bootstrap: str, n: int, tmp: Path) -> list[Worker]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCPULSE_")}  # only what we pass
    env |= {"CCPULSE_METRICS_HOST": "127.0.0.1", "CCPULSE_METRICS_PORT": "0"}
    workers = []
    for i in range(n):
        log = tmp / f"worker-{i}.log"
        command = [sys.executable, "-m", "streams.cli", "worker", "--bootstrap-servers", bootstrap,
                   "--group", GROUP, "--metrics-port", "0", "--log-level", "warning"]  # fmt: skip
        out = log.open("ab")
        workers.append(Worker(subprocess.Popen(command, stdout=out, stderr=out, env=env), log))
        out.close()
    deadline = time.monotonic() + 60
    for w in workers:
        while not w.url:
            if w.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {w.process.pid} did not start: {w.log.read_text()[-2000:]}")
            lines = [x for x in w.log.read_text().splitlines() if x.startswith('{"event": "metrics"')]
            w.url = json.loads(lines[0])["url"] if lines else ""
            time.sleep(0.2)
    return workers


def wait_group_stable(bootstrap: str, n: int, timeout_s: float = 120.0) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            group = admin.describe_consumer_groups([GROUP])[GROUP].result(timeout=10)
            members = group.members
            if group.state == ConsumerGroupState.STABLE and len(members) == n:
                if all(m.assignment and m.assignment.topic_partitions for m in members):
                    return
        except (KafkaException, TimeoutError):
            pass  # the group does not exist yet, or its coordinator is still loading
        time.sleep(0.5)
    raise RuntimeError(f"group {GROUP} not stable with {n} assigned members after {timeout_s} s")


class Offsets:
    """The group's lag in messages (committed offsets vs high watermarks) and topic sizes."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False}
        )

    def _partitions(self, topics: tuple[str, ...]) -> list[TopicPartition]:
        meta = self.consumer.list_topics(timeout=10).topics
        return [TopicPartition(t, p) for t in topics for p in sorted(meta[t].partitions)]

    def size(self, topics: tuple[str, ...]) -> int:
        marks = (self.consumer.get_watermark_offsets(tp, timeout=10) for tp in self._partitions(topics))
        return sum(high - low for low, high in marks)

    def lag(self) -> int:
        total = 0
        for tp in self.consumer.committed(self._partitions(INPUT_TOPICS), timeout=10):
            low, high = self.consumer.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), timeout=10
            )
            total += high - (tp.offset if tp.offset >= 0 else low)
        return total

    def close(self) -> None:
        self.consumer.close()


def quantile(first: list[Scrape], last: list[Scrape], q: float) -> float | None:
    """Upper bound of the bucket holding quantile q of the histogram between two scrapes (None: no
    observations, or above the last finite bucket)."""
    delta = Counter[float]()
    for a, b in zip(first, last, strict=True):
        for le, value in b.buckets.items():
            delta[le] += value - a.buckets.get(le, 0.0)
    total = delta.get(float("inf"), 0.0)
    if not total:
        return None
    bound = next(le for le in sorted(delta) if delta[le] >= q * total)
    return bound if math.isfinite(bound) else None


def stop_workers(workers: list[Worker]) -> None:
    for w in workers:
        if w.process.poll() is None:
            w.process.terminate()  # SIGTERM: final checkpoint, JSON summary
    for w in workers:
        try:
            w.process.wait(90)
        except subprocess.TimeoutExpired:
            w.process.kill()
            w.process.wait()
