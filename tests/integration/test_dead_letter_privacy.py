"""Raw subscriber identities never reach Kafka, ClickHouse or logs through the dead-letter path.

Real Apache Kafka (a broker of its own, so that every topic can be read whole), the KPI
worker as `ccpulse worker` with CCPULSE_PSEUDONYM_KEY in its environment, and the history
sink into ClickHouse 18.16 and chdb. Producers send raw phone numbers and e-mail addresses
in customer_ref among valid traffic; afterwards every record of every topic but their own
input topic (keys, values, header values), every row of every history table (base64
columns decoded) and the captured logs are searched for them. The dead letters are there,
one per injected message, with their reason and position, and their bodies decode to
pseudonymise(raw, key).
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from streams.domain.events import Channel, ContactEvent, ContactEventType
from streams.domain.pseudonym import normalise_identity, pseudonymise
from streams.domain.regions import region_codes
from streams.history.migrate import migrate
from streams.history.sink import HistorySink
from streams.history.store import HistoryStore
from streams.services.kafka import KafkaCluster
from streams.wire.codec import Codec
from streams.wire.topics import DEAD_LETTER_TOPIC

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

CONTACT = "cc.contact.events"
KEY = "integration-" + uuid.uuid4().hex  # as CCPULSE_PSEUDONYM_KEY
PHONE, EMAIL, SPACED_PHONE = "+79161234567", "ivan.petrov@example.com", "+7 (495) 765-43-21"
OTHER_EMAIL = "olga.smirnova@example.org"  # in a message rejected for its region, not its ref
LEGACY_PHONE = "+79990001122"  # a raw dead letter written straight to Kafka by an older tool
RAW_CODEC = Codec.pinned()  # no validation: sends what a careless producer would
REGIONS = ("RU-MOW", "RU-SPE", "RU-KGD", "RU-NVS")
WORKER_GROUP = "privacy-kpi"


def contact(i: int, **changes: Any) -> ContactEvent:
    event = ContactEvent(
        event_id=str(uuid.uuid4()), contact_id=f"c-{i}", type=ContactEventType.QUEUED, channel=Channel.VOICE,
        region=REGIONS[i % len(REGIONS)], queue="billing", language="ru", customer_ref=f"{i:032x}",
        event_time_ms=int(time.time() * 1000) - 600_000 + i * 100,
    )  # fmt: skip
    return dataclasses.replace(event, **changes)


# raw identity -> (the message it travels in, the reason the worker must give)
INJECTED = {
    PHONE: (contact(1001, customer_ref=PHONE), "not_pseudonymised"),
    EMAIL: (contact(1002, customer_ref=EMAIL, type=ContactEventType.ARRIVED), "not_pseudonymised"),
    SPACED_PHONE: (contact(1003, customer_ref=SPACED_PHONE), "not_pseudonymised"),
    OTHER_EMAIL: (contact(1004, customer_ref=OTHER_EMAIL, region="XX-NOWHERE"), "unknown_region"),
}
GARBAGE = b"\x00\x00\x00\x00\x07 junk"  # undecodable, no identity in it


def forbidden(identity: str) -> list[bytes]:
    """The identity as sent and normalised (digits only for phones, lower case for e-mail)."""
    return sorted({identity.encode(), normalise_identity(identity).encode()})


def produce_traffic(bootstrap: str) -> dict[str, tuple[int, int]]:
    """Valid events with the injected ones among them; returns identity -> (partition, offset)."""
    positions: dict[str, tuple[int, int]] = {}
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})

    def delivered_as(name: str) -> Any:
        def on_delivery(error: KafkaError | None, message: Message) -> None:
            assert error is None, error
            positions[name] = (int(message.partition()), int(message.offset()))  # type: ignore[arg-type]

        return on_delivery

    injected = iter(INJECTED.items())
    for i in range(400):
        event = contact(i)
        producer.produce(CONTACT, RAW_CODEC.encode(CONTACT, event), event.region.encode())
        if i % 80 == 40 and (item := next(injected, None)) is not None:
            identity, (bad, _) = item
            value = RAW_CODEC.encode(CONTACT, bad)
            producer.produce(CONTACT, value, bad.region.encode(), on_delivery=delivered_as(identity))
    producer.produce(CONTACT, GARBAGE, b"RU-MOW", on_delivery=delivered_as("garbage"))
    # what an older worker wrote: the raw bytes in original_value (the sink must clean it)
    legacy = {
        "original_topic": CONTACT, "original_partition": 0, "original_offset": 999_999, "original_key": None,
        "original_value": RAW_CODEC.encode(CONTACT, contact(2001, customer_ref=LEGACY_PHONE)),
        "reason": "not_pseudonymised", "detail": "legacy", "failed_at_ms": int(time.time() * 1000),
        "consumer": "legacy-worker",
    }  # fmt: skip
    producer.produce(DEAD_LETTER_TOPIC, RAW_CODEC.encode(DEAD_LETTER_TOPIC, legacy), CONTACT.encode())
    assert producer.flush(30) == 0
    assert len(positions) == len(INJECTED) + 1
    return positions


def run_worker(bootstrap: str, log: Path) -> None:
    command = [
        sys.executable, "-m", "streams.cli", "worker", "--bootstrap-servers", bootstrap,
        "--group", WORKER_GROUP, "--metrics-port", "-1", "--checkpoint-interval", "0.5", "--idle-exit", "6",
        "--log-level", "debug",
    ]  # fmt: skip
    env = {**os.environ, "CCPULSE_PSEUDONYM_KEY": KEY}
    env.pop("CCPULSE_PSEUDONYM_KEY_FILE", None)
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        assert process.wait(timeout=180) == 0, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def read_every_topic(bootstrap: str) -> list[Message]:
    """Every record of every topic and partition, from the low watermark to the end."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"scan-{uuid.uuid4().hex}", "enable.auto.commit": False,
         "enable.partition.eof": True}
    )  # fmt: skip
    try:
        wanted: set[tuple[str, int]] = set()
        assignment = []
        for topic, meta in consumer.list_topics(timeout=10).topics.items():
            for partition in meta.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                if high > low:
                    wanted.add((topic, partition))
                    assignment.append(TopicPartition(topic, partition, low))
        consumer.assign(assignment)
        records: list[Message] = []
        deadline = time.monotonic() + 60
        while wanted and time.monotonic() < deadline:
            for message in consumer.consume(5000, 0.5):
                error = message.error()
                if error is None:
                    records.append(message)
                elif error.code() == KafkaError._PARTITION_EOF:
                    wanted.discard((str(message.topic()), int(message.partition())))  # type: ignore[arg-type]
        assert not wanted, f"not read to the end: {sorted(wanted)}"
        return records
    finally:
        consumer.close()


def record_bytes(message: Message) -> bytes:
    headers = b"".join((name.encode() + b"=" + (value or b"")) for name, value in message.headers() or [])
    return b"|".join((message.key() or b"", message.value() or b"", headers))


def every_history_row(store: HistoryStore) -> dict[str, list[bytes]]:
    """table -> each row as text, with base64 columns decoded (dead_letters keeps bytes as base64)."""
    listed = store.query(f"SELECT name FROM system.tables WHERE database = '{store.database}'")
    tables = [name for (name,) in listed]
    found: dict[str, list[bytes]] = {}
    for table in tables:
        columns = [name for (name, *_rest) in store.query(f"DESCRIBE TABLE {store.database}.{table}")]
        rows = store.query(f"SELECT * FROM {store.database}.{table}")  # noqa: S608
        found[table] = [
            repr(row).encode()
            + b"".join(base64.b64decode(v) for c, v in zip(columns, row, strict=True) if c.endswith("_b64"))
            for row in rows
        ]
    return found


def assert_absent(identities: list[str], where: str, blobs: list[bytes]) -> None:
    for identity in identities:
        for form in forbidden(identity):
            hits = [blob[:200] for blob in blobs if form in blob]
            assert not hits, f"{form!r} found in {where}: {hits[:2]}"


def test_raw_identities_never_leave_the_dead_letter_path(
    fresh_kafka: KafkaCluster, history_stores: list[HistoryStore], tmp_path: Path,
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """One broker and one worker run; each history store (18.16, chdb) sinks it and is scanned."""
    caplog.set_level(logging.DEBUG)
    bootstrap, worker_log = fresh_kafka.bootstrap_servers, tmp_path / "worker.log"
    positions = produce_traffic(bootstrap)
    run_worker(bootstrap, worker_log)
    codec = Codec.pinned(known_regions=region_codes())
    raw = [*INJECTED, LEGACY_PHONE]
    for history_store in history_stores:
        migrate(history_store)
        config = {"bootstrap.servers": bootstrap, "group.id": f"privacy-sink-{history_store.backend}",
                  "session.timeout.ms": 6000}  # fmt: skip
        sink = HistorySink(config, history_store, codec, max_wait_s=0.5, pseudonym_key=KEY.encode())
        sink_stats = sink.run(threading.Event(), idle_exit_s=6)
        assert_history_pseudonymised(history_store, codec, positions, raw)
        assert sink_stats.rows_written > 400, history_store.backend

    # Kafka: the worker's dead letters, one per injected message, each pseudonymised
    records = read_every_topic(bootstrap)
    letters = [
        (m, codec.decode(DEAD_LETTER_TOPIC, m.value()))
        for m in records
        if m.topic() == DEAD_LETTER_TOPIC and m.key() == CONTACT.encode()
    ]
    by_worker = [(m, d) for m, d in letters if d["consumer"] == WORKER_GROUP]
    ours = {(d["original_partition"], d["original_offset"]): (m, d) for m, d in by_worker}
    assert len(ours) == len(INJECTED) + 1, sorted(ours)
    for identity, (_, reason) in INJECTED.items():
        message, letter = ours[positions[identity]]
        assert (letter["original_topic"], letter["reason"]) == (CONTACT, reason)
        assert dict(message.headers() or [])["reason"] == reason.encode()
        body = codec.decode_record(CONTACT, letter["original_value"])
        assert body["customer_ref"] == pseudonymise(identity, KEY.encode())
    assert ours[positions["garbage"]][1]["original_value"] == GARBAGE  # undecodable: passed unchanged
    # every topic but the producers' own input topic, which holds what they sent until retention
    written = [record_bytes(m) for m in records if m.topic() != CONTACT]
    assert_absent(list(INJECTED), "Kafka", written)
    # positive controls: the scan sees raw values where they are (the input, the legacy letter)
    assert any(PHONE.encode() in record_bytes(m) for m in records if m.topic() == CONTACT)
    assert any(LEGACY_PHONE.encode() in blob for blob in written)

    # logs: the worker's (debug, stdout and stderr), this process's loggers and file descriptors
    worker_text = worker_log.read_bytes()
    assert b'"event": "stopped"' in worker_text and b"assigned" in worker_text  # the log was captured
    out, err = capfd.readouterr()
    logs = [worker_text, caplog.text.encode(), out.encode(), err.encode()]
    assert_absent(raw, "logs", logs)
    assert KEY.encode() not in b"".join(logs)


def assert_history_pseudonymised(
    history_store: HistoryStore, codec: Codec, positions: dict[str, tuple[int, int]], raw: list[str]
) -> None:
    # ClickHouse: every table, every row; the dead letters are stored pseudonymised
    history = every_history_row(history_store)
    assert_absent(raw, f"{history_store.backend} history", [row for rows in history.values() for row in rows])
    rows = history_store.query(
        f"SELECT original_partition, original_offset, reason, original_value_b64 "
        f"FROM {history_store.database}.dead_letters WHERE consumer = '{WORKER_GROUP}'"
    )
    stored = {(int(p), int(o)): (reason, base64.b64decode(b64)) for p, o, reason, b64 in rows}
    assert len(stored) == len(INJECTED) + 1, history_store.backend
    for identity, (_, reason) in INJECTED.items():
        stored_reason, body_bytes = stored[positions[identity]]
        assert stored_reason == reason, history_store.backend
        ref = codec.decode_record(CONTACT, body_bytes)["customer_ref"]
        assert ref == pseudonymise(identity, KEY.encode())
    ((legacy_b64,),) = history_store.query(
        f"SELECT original_value_b64 FROM {history_store.database}.dead_letters "
        "WHERE consumer = 'legacy-worker'"
    )
    legacy_ref = codec.decode_record(CONTACT, base64.b64decode(legacy_b64))["customer_ref"]
    assert legacy_ref == pseudonymise(LEGACY_PHONE, KEY.encode())
