"""Standard Kafka tooling reads our outputs without our code: Debian's kcat consumes what
a real `ccpulse worker` wrote for a simulated hour, and the values decode through a real
Schema Registry (Apicurio, Confluent API).

Debian's kcat 1.7.1 is built without Avro/Schema Registry support (libserdes is not in
Debian): ``kcat -s value=avro -r URL`` answers "This build of kcat lacks
Avro/Schema-Registry support" (docs/operations.md). So kcat reads the raw Confluent-framed
bytes, and two decoders that are not ours read them through the registry: the Apache
``avro`` library with the writer schema fetched over HTTP by the id in the frame
(GET <registry>/schemas/ids/<id>), and confluent-kafka's AvroDeserializer.

The path a downstream team takes: `ccpulse schemas register` puts every schema under
``<topic>-value`` (BACKWARD); the simulator and the worker run with
CCPULSE_SCHEMA_REGISTRY_URL, so every frame carries a registry id. Checked on content:
both decoders and ccpulse's codec agree on every offset of cc.kpi.snapshots,
cc.routing.decisions, cc.queue.state and cc.contact.events; each MINUTE snapshot's
offered/answered/abandoned equal the simulator's ground truth for that key; every decision's
contact_id and event_id are those of an ARRIVED event, one decision per arrival.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import avro.io
import avro.schema
import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from support.cli import ccpulse_ok
from support.waiting import wait_until

from streams.simulator import run
from streams.wire.codec import Codec
from streams.wire.schema_registry import ConfluentSchemaRegistry

pytestmark = [pytest.mark.kafka, pytest.mark.registry, pytest.mark.kcat]

SNAPSHOTS, DECISIONS, QUEUES = "cc.kpi.snapshots", "cc.routing.decisions", "cc.queue.state"
CONTACTS = "cc.contact.events"
INPUTS = (CONTACTS, "cc.agent.events", "cc.survey.events")
GROUP = "kcat-kpi"
REGIONS = ("RU-MOW", "RU-KAM")
UNCONTESTED = ("NO_AGENTS_LOGGED_IN", "STALE_STATE", "EMAIL_DEFERRED")  # decisions without candidates
TRUTH_FIELDS = ("offered", "answered", "abandoned")
KCAT_FORMAT = "%p %o %K %S\n%k%s"  # header line, then exactly K key bytes and S value bytes


@dataclass(frozen=True)
class Message:
    partition: int
    offset: int
    key: str
    value: bytes


def kcat() -> str:
    found = shutil.which("kcat")
    assert found, "kcat is not installed: `apt-get install kcat` (make test does it)"
    return found


def kcat_read(bootstrap: str, topic: str) -> list[Message]:
    """Every message of ``topic`` from the beginning to the end, as kcat prints it."""
    command = [kcat(), "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", KCAT_FORMAT]
    done = subprocess.run(command, capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]!r}"
    out, at, messages = done.stdout, 0, []
    while at < len(out):
        line_end = out.index(b"\n", at)
        partition, offset, key_len, value_len = map(int, out[at:line_end].split())
        key_at = line_end + 1
        value_at = key_at + max(key_len, 0)
        key, value = out[key_at:value_at].decode(), out[value_at : value_at + value_len]
        messages.append(Message(partition, offset, key, value))
        at = value_at + value_len
    assert messages, f"kcat read nothing from {topic}: {done.stderr[-2000:]!r}"
    return messages


def as_ms(value: Any) -> Any:
    """Both Avro libraries return timestamp-millis as aware datetimes; compare in ms."""
    if isinstance(value, dt.datetime):
        return (value - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(milliseconds=1)
    if isinstance(value, dict):
        return {k: as_ms(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_ms(v) for v in value]
    return value


class ApacheAvroDecoder:
    """Confluent framing undone by hand; the writer schema from the registry by its id; the
    body read with the Apache ``avro`` library: no ccpulse code, no Confluent client."""

    def __init__(self, registry_url: str) -> None:
        self.http = httpx.Client(base_url=registry_url, timeout=30)
        self.readers: dict[int, avro.io.DatumReader] = {}

    def __call__(self, value: bytes) -> dict[str, Any]:
        assert value[0] == 0, "Confluent magic byte"
        schema_id = int.from_bytes(value[1:5], "big")
        if schema_id not in self.readers:
            schema = self.http.get(f"/schemas/ids/{schema_id}").raise_for_status().json()["schema"]
            self.readers[schema_id] = avro.io.DatumReader(avro.schema.parse(schema))
        body = io.BytesIO(value[5:])
        record = self.readers[schema_id].read(avro.io.BinaryDecoder(body))
        assert body.tell() == len(value) - 5, "trailing bytes"
        return dict(as_ms(record))

    def close(self) -> None:
        self.http.close()


def latest_by_key(messages: list[Message], values: dict[tuple[int, int], dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(messages, key=lambda m: (m.partition, m.offset))
    return {m.key: values[(m.partition, m.offset)] for m in ordered}


def read_truth(path: Path) -> dict[str, dict[str, int]]:
    with path.open() as f:
        return {
            f"{r['region']}|{r['channel']}|MINUTE|{r['minute_ms']}": {f: int(r[f]) for f in TRUTH_FIELDS}
            for r in csv.DictReader(f)
        }


def input_committed(bootstrap: str) -> int:
    """Input messages the worker's group has committed (it commits after each checkpoint)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False})
    try:
        topics = consumer.list_topics(timeout=10).topics
        wanted = [TopicPartition(t, p) for t in INPUTS for p in topics[t].partitions]
        return sum(max(tp.offset, 0) for tp in consumer.committed(wanted, timeout=10))
    finally:
        consumer.close()


def ccpulse(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return ccpulse_ok(*args, env=env, timeout_s=timeout)


def test_kcat_decodes_snapshots_decisions_and_queue_state(
    fresh_kafka: Any, registry_url: str, tmp_path: Path
) -> None:
    bootstrap = fresh_kafka.bootstrap_servers
    env = {**os.environ, "CCPULSE_SCHEMA_REGISTRY_URL": registry_url, "CCPULSE_BOOTSTRAP_SERVERS": bootstrap}
    registered = json.loads(ccpulse(env, "--json", "schemas", "register").stdout)
    assert {r["subject"] for r in registered} >= {f"{t}-value" for t in (SNAPSHOTS, DECISIONS, QUEUES)}
    assert {r["compatibility"] for r in registered} == {"BACKWARD"}

    truth_path, log = tmp_path / "truth.csv", tmp_path / "worker.log"
    start = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=1)
    registry = ConfluentSchemaRegistry(registry_url)
    codec = Codec.with_registry(registry_url, registry=registry)  # the simulator frames with its ids
    command = [sys.executable, "-m", "streams.cli", "worker", "--group", GROUP, "--metrics-port", "-1",
               "--checkpoint-interval", "0.5"]  # fmt: skip
    with log.open("wb") as out:  # live, as deployed: the worker runs while the simulator writes
        worker = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        summary = run(regions=REGIONS, duration_s=3600, seed=17, out="kafka", bootstrap_servers=bootstrap,
                      start=start, truth_path=truth_path, codec=codec, speed=3600 / 20)  # fmt: skip
        wait_until(lambda: input_committed(bootstrap) == summary.messages, 300,
                   "the worker to commit all input", seen=lambda: input_committed(bootstrap))  # fmt: skip
        worker.send_signal(signal.SIGTERM)  # a clean stop: the summary line, then exit 0
        assert worker.wait(timeout=60) == 0, log.read_text()[-2000:]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    lines = log.read_text().splitlines()
    stopped = [json.loads(line) for line in lines if line.startswith('{"event": "stopped"')]
    assert stopped and stopped[0]["events"] == summary.messages and stopped[0]["dead_letters"] == 0, stopped
    assert summary.contacts > 100

    apache = ApacheAvroDecoder(registry_url)
    confluent_client = SchemaRegistryClient({"url": registry_url, "timeout": 10})  # default: none
    confluent = AvroDeserializer(confluent_client)
    read: dict[str, list[Message]] = {}
    values: dict[str, dict[tuple[int, int], dict[str, Any]]] = {}
    try:
        for topic in (SNAPSHOTS, DECISIONS, QUEUES, CONTACTS):
            read[topic] = kcat_read(bootstrap, topic)
            context = SerializationContext(topic, MessageField.VALUE)
            values[topic] = {}
            for m in read[topic]:
                by_apache = apache(m.value)
                assert by_apache == as_ms(confluent(m.value, context)), (topic, m.partition, m.offset)
                assert by_apache == codec.decode_record(topic, m.value), (topic, m.partition, m.offset)
                values[topic][(m.partition, m.offset)] = by_apache
    finally:
        apache.close()
        confluent_client.close()
        registry.close()

    # snapshots: the latest MINUTE snapshot per key carries the ground truth
    snapshots = latest_by_key(read[SNAPSHOTS], values[SNAPSHOTS])
    minutes = {k: s for k, s in snapshots.items() if s["window"] == "MINUTE"}
    truth = read_truth(truth_path)
    assert len(truth) > 50 and set(minutes) >= {k for k, t in truth.items() if any(t.values())}
    zero = dict.fromkeys(TRUTH_FIELDS, 0)
    got = {k: {f: s[f] for f in TRUTH_FIELDS} for k, s in minutes.items()}
    wrong = {k: (truth.get(k), g) for k, g in got.items() if truth.get(k, zero) != g}
    assert not wrong, f"{len(wrong)} of {len(got)} minutes differ from the truth: {list(wrong.items())[:3]}"
    for key, s in minutes.items():
        region, channel, _window, minute_ms = key.split("|")
        assert (s["region"], s["channel"], s["window_start_ms"]) == (region, channel, int(minute_ms))
        assert s["window_end_ms"] - s["window_start_ms"] == 60_000 and s["version"] > 0
    offered = sum(g["offered"] for g in got.values())
    assert offered == sum(t["offered"] for t in truth.values()) > 100

    # decisions: one per ARRIVED contact, naming that contact and that event
    arrived = {c["contact_id"]: c for c in values[CONTACTS].values() if c["type"] == "ARRIVED"}
    decisions = list(values[DECISIONS].values())
    assert Counter(d["contact_id"] for d in decisions).most_common(1)[0][1] == 1
    assert {d["contact_id"] for d in decisions} == set(arrived) and len(arrived) == summary.contacts
    for d in decisions:
        contact = arrived[d["contact_id"]]
        assert (d["event_id"], d["region"], d["channel"]) == (
            contact["event_id"], contact["region"], contact["channel"],
        )  # fmt: skip
        assert d["target_region"] in REGIONS and d["policy_version"] and d["decided_at_ms"] > 0
        assert d["candidates"] or d["reason"] in UNCONTESTED, d  # none considered: nothing to choose from
        if d["candidates"]:  # the chosen queue is one of those considered
            targets = {(c["region"], c["queue"]) for c in d["candidates"]}
            assert (d["target_region"], d["target_queue"]) in targets or d["reason"] in UNCONTESTED, d
    reasons = Counter(d["reason"] for d in decisions)
    assert reasons["HOME"] > 0, reasons
    assert {m.key for m in read[DECISIONS]} == set(arrived)

    # queue state: the latest observation per region|queue, for the simulated regions only
    queues = latest_by_key(read[QUEUES], values[QUEUES])
    assert queues and {q["region"] for q in queues.values()} == set(REGIONS)
    for key, q in queues.items():
        assert key == f"{q['region']}|{q['queue']}"
        assert q["contacts_in_queue"] >= 0 and q["agents_logged_in"] >= q["agents_ready"] >= 0
        assert q["as_of_ms"] >= int(start.timestamp() * 1000)
