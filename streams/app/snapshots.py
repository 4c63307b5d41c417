"""Reading cc.kpi.snapshots back: the current (highest-version) snapshot per key."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError

from streams.app.worker import SNAPSHOT_TOPIC
from streams.codec import Codec


def latest_snapshots(
    client_config: dict[str, Any], codec: Codec, idle_s: float = 2.0, timeout_s: float = 60.0
) -> dict[str, dict[str, Any]]:
    """key -> decoded snapshot with the highest version, read from the start of the topic."""
    consumer = Consumer(
        {
            **client_config,
            "group.id": f"ccpulse-snapshot-reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    latest: dict[str, dict[str, Any]] = {}
    consumer.subscribe([SNAPSHOT_TOPIC])
    deadline, last_seen = time.monotonic() + timeout_s, None
    eof: set[int] = set()
    try:
        while time.monotonic() < deadline:
            messages = consumer.consume(5000, 0.2)
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        eof.add(int(message.partition()))  # type: ignore[arg-type, unused-ignore]
                    continue
                last_seen = time.monotonic()
                key = (message.key() or b"").decode()
                value = codec.decode(SNAPSHOT_TOPIC, message.value())
                current = latest.get(key)
                if current is None or value["version"] >= current["version"]:
                    latest[key] = value
            assigned = consumer.assignment()
            if assigned and len(eof) >= len(assigned):
                break
            if last_seen is not None and time.monotonic() - last_seen > idle_s:
                break
    finally:
        consumer.close()
    return latest
