"""Routing in the worker on real Apache Kafka: every ARRIVED contact of a simulated hour gets exactly
one decision, and no decision targets a queue without the needed skill and language."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Consumer
from prometheus_client import CollectorRegistry

from streams.domain.regions import region_codes
from streams.jobs.runner import make_observer
from streams.jobs.worker import KpiWorker, WorkerOptions
from streams.simulator import run
from streams.simulator.config import Faults
from streams.wire.codec import Codec
from streams.wire.topics import DECISIONS_TOPIC

pytestmark = pytest.mark.kafka
REGIONS = ("RU-MOW", "RU-KAM", "RU-NVS", "RU-KHA", "RU-PRI")  # RU-PRI and RU-KHA take WeChat


def read_all(bootstrap: str, topic: str, codec: Codec) -> list[tuple[bytes, dict[str, Any]]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "read-decisions",
                         "auto.offset.reset": "earliest", "enable.partition.eof": True})  # fmt: skip
    consumer.subscribe([topic])
    out, eof, idle = [], set(), 0
    while idle < 20:
        messages = consumer.consume(1000, 0.5)
        idle = 0 if messages else idle + 1
        for m in messages:
            if m.error() is None:
                out.append((m.key(), codec.decode(topic, m.value())))
            else:
                eof.add(m.partition())
        if consumer.assignment() and len(eof) >= len(consumer.assignment()) and out:
            break
    consumer.close()
    return out


def test_every_arrival_gets_exactly_one_eligible_decision(fresh_kafka: Any) -> None:
    bootstrap = fresh_kafka.bootstrap_servers
    registry = CollectorRegistry()
    codec = Codec.pinned(known_regions=region_codes())
    options = WorkerOptions(checkpoint_interval_s=1.0)
    worker = KpiWorker({"bootstrap.servers": bootstrap}, codec, options, observer=make_observer(registry))
    thread = threading.Thread(target=worker.run, args=(threading.Event(), 6.0), daemon=True)
    thread.start()
    start = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=1)
    summary = run(
        regions=REGIONS,
        duration_s=3600,
        seed=9,
        out="kafka",
        bootstrap_servers=bootstrap,
        start=start,
        speed=3600 / 20,
        faults=Faults(duplicate=0.02),
    )  # fmt: skip: an hour in ~20 s, live
    thread.join(timeout=180)
    assert not thread.is_alive()
    decisions = read_all(bootstrap, DECISIONS_TOPIC, Codec.pinned())
    keys = Counter(key for key, _ in decisions)
    assert len(keys) == summary.contacts, "one decision per simulated contact"
    assert max(keys.values()) == 1, "a duplicated ARRIVED event was decided twice"
    reasons = Counter(d["reason"] for _, d in decisions)
    assert reasons["HOME"] > len(decisions) / 2, reasons
    for _, d in decisions:
        if d["reason"] in ("NO_AGENTS_LOGGED_IN", "STALE_STATE", "EMAIL_DEFERRED", "NO_STATE"):
            continue
        chosen = [
            c for c in d["candidates"] if (c["region"], c["queue"]) == (d["target_region"], d["target_queue"])
        ]
        assert chosen and chosen[0]["eligible"], d  # skill (queue of the channel) and language match
        assert d["decided_at_ms"] > 0 and d["policy_version"]
    assert registry.get_sample_value("ccpulse_routing_decisions_total", {"reason": "HOME"}) == reasons["HOME"]
    assert registry.get_sample_value(
        "ccpulse_ewt_error_seconds_count", {"channel": "VOICE", "method": "POSITION"}
    )
