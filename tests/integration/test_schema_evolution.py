"""Schema evolution both ways through real Apache Kafka (schemas/README.md "Evolving a schema").

The next release of the contact event schema is built here: two fields with defaults
appended (an optional ``channel_detail``, and ``source_system`` defaulting to "unknown").

- Producer first: a producer on the newer schema registers it after the consumer started;
  the running consumer fetches that writer schema by the id in the Confluent frame, once,
  and decodes the same domain events (new fields ignored). A pinned-id consumer has no
  registry to ask and dead-letters such messages (unknown_schema_id): with pinned ids the
  consumers upgrade first.
- Consumer first: a consumer on the newer schema (pinned id 104 with 101 kept under
  ``previous_schemas``, or a registry) reads what the current producer writes: the same
  domain events, the new fields filled with their defaults.

The registry cases run on the in-memory registry and on a real Apicurio Registry whose
global compatibility is BACKWARD (as `ccpulse schemas register` sets it): the registry
itself accepts the newer version.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import avro.schema
import pytest
import yaml
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from support.registry import CountingRegistry

from streams.domain.errors import InvalidEvent
from streams.domain.events import ContactEvent
from streams.domain.regions import region_codes
from streams.services.kafka import KafkaCluster
from streams.wire.codec import HEADER_SIZE, Codec
from streams.wire.schema_registry import ConfluentSchemaRegistry, InMemorySchemaRegistry, SchemaRegistry
from streams.wire.topic_contracts import SCHEMAS_DIR, load_examples

pytestmark = pytest.mark.kafka

CONTACT = "cc.contact.events"
REGISTRY_URL = "http://registry.invalid"  # the registry object is passed in; this URL is never contacted
NEWER_PINNED_ID = 104
NEW_FIELDS: list[dict[str, Any]] = [
    {
        "name": "channel_detail",
        "type": ["null", "string"],
        "default": None,
        "doc": "Trunk, widget or mailbox.",
    },
    {
        "name": "source_system",
        "type": "string",
        "default": "unknown",
        "doc": "Adapter that produced the event.",
    },
]
NEW_VALUES = {"channel_detail": "sip-trunk-7", "source_system": "acd-2"}


def current_schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS_DIR / "contact_event.avsc").read_text())
    return loaded


def newer_schema() -> dict[str, Any]:
    schema = current_schema()
    return {**schema, "fields": [*schema["fields"], *NEW_FIELDS]}


@pytest.fixture
def newer_schemas(tmp_path: Path) -> Path:
    """schemas/ of the next release: the newer contact event schema under a new pinned id;
    the current one kept decodable as versions/contact_event.101.avsc (previous_schemas)."""
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, schemas)
    (schemas / "versions").mkdir(exist_ok=True)  # schemas/versions/ holds older routing_decision ids
    shutil.copyfile(SCHEMAS_DIR / "contact_event.avsc", schemas / "versions" / "contact_event.101.avsc")
    (schemas / "contact_event.avsc").write_text(json.dumps(newer_schema(), indent=2))
    contract_path = schemas / "topics" / f"{CONTACT}.yaml"
    contract = yaml.safe_load(contract_path.read_text())
    assert contract["schema_id"] == 101
    contract["schema_id"] = NEWER_PINNED_ID
    contract["previous_schemas"] = {101: "versions/contact_event.101.avsc"}
    contract_path.write_text(yaml.safe_dump(contract))
    return schemas


def example_events() -> list[ContactEvent]:
    codec = Codec.pinned()
    events = [codec.from_record(CONTACT, record) for _name, record in load_examples(CONTACT)]
    assert len(events) >= 5 and len({e.event_id for e in events}) == len(events)
    return events


def through_kafka(kafka: KafkaCluster, messages: list[tuple[bytes, bytes]]) -> list[bytes]:
    """Produce (key, value) pairs to a new 3-partition topic and read every value back."""
    topic = f"schema-evolution-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(timeout=30)
    producer = Producer(
        {"bootstrap.servers": kafka.bootstrap_servers, "acks": "all", "enable.idempotence": True}
    )
    errors: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, _message: object) -> None:
        if error is not None:
            errors.append(error)

    for key, value in messages:
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
    assert producer.flush(30) == 0 and not errors, errors
    consumer = Consumer(
        {"bootstrap.servers": kafka.bootstrap_servers, "group.id": topic, "enable.auto.commit": False}
    )
    received: list[bytes] = []
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])  # from offset 0
        deadline = time.monotonic() + 30
        while len(received) < len(messages) and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=100, timeout=0.5):
                assert message.error() is None, message.error()
                payload = message.value()
                assert payload is not None
                received.append(payload)
    finally:
        consumer.close()
    assert len(received) == len(messages)
    return received


def by_event_id(events: list[ContactEvent]) -> dict[str, ContactEvent]:
    return {e.event_id: e for e in events}


def test_the_newer_schema_is_fully_compatible() -> None:
    checker = ReaderWriterCompatibilityChecker()
    current, newer = (avro.schema.parse(json.dumps(s)) for s in (current_schema(), newer_schema()))
    for reader, writer in ((newer, current), (current, newer)):
        result = checker.get_compatibility(reader, writer)
        assert result.compatibility is SchemaCompatibilityType.compatible, result.messages


def test_a_running_consumer_reads_a_newer_producer(
    kafka: KafkaCluster, newer_schemas: Path, schema_registry: CountingRegistry
) -> None:
    registry = schema_registry
    registry.set_compatibility("BACKWARD")
    consumer = Codec.with_registry(REGISTRY_URL, registry=registry, known_regions=region_codes())
    # the producer is upgraded while the consumer runs: it registers the newer schema
    producer = Codec.with_registry(REGISTRY_URL, newer_schemas, registry=registry)
    newer_id = producer.schema_id(CONTACT)
    assert newer_id not in consumer.known_schema_ids(CONTACT)
    events = example_events()
    values = [producer.encode(CONTACT, {**producer.to_record(e), **NEW_VALUES}) for e in events]
    assert {int.from_bytes(v[1:HEADER_SIZE], "big") for v in values} == {newer_id}

    received = through_kafka(kafka, [(e.region.encode(), v) for e, v in zip(events, values, strict=True)])

    decoded = [consumer.decode(CONTACT, value) for value in received]
    assert by_event_id(decoded) == by_event_id(events)  # the same domain events
    assert registry.lookups == 1  # the newer writer schema was fetched once, by its id
    records = [consumer.decode_record(CONTACT, value) for value in received]
    assert not any(set(NEW_VALUES) & set(r) for r in records)  # the new fields are ignored
    assert {r["channel_detail"] for r in (producer.decode_record(CONTACT, v) for v in received)} == {
        NEW_VALUES["channel_detail"]
    }
    pinned = Codec.pinned(known_regions=region_codes())  # no registry: nothing to ask
    for value in received:
        with pytest.raises(InvalidEvent) as failure:
            pinned.decode(CONTACT, value)
        assert failure.value.reason == "unknown_schema_id"


@pytest.mark.parametrize("ids", ["pinned", "in-memory", pytest.param("apicurio", marks=pytest.mark.registry)])
def test_an_upgraded_consumer_reads_the_current_producer(
    kafka: KafkaCluster, newer_schemas: Path, ids: str, request: pytest.FixtureRequest
) -> None:
    if ids == "pinned":
        producer = Codec.pinned()
        consumer = Codec.pinned(newer_schemas, known_regions=region_codes())
        assert consumer.known_schema_ids(CONTACT) == (101, NEWER_PINNED_ID)
    else:
        registry: SchemaRegistry = InMemorySchemaRegistry()
        if ids == "apicurio":
            registry = request.getfixturevalue("registry_client")
            registry.set_compatibility("BACKWARD")
        producer = Codec.with_registry(REGISTRY_URL, registry=registry)
        consumer = Codec.with_registry(REGISTRY_URL, newer_schemas, region_codes(), registry=registry)
    assert producer.schema_id(CONTACT) != consumer.schema_id(CONTACT)
    events = example_events()
    current_values = [producer.encode(CONTACT, e) for e in events]
    newer_values = [consumer.encode(CONTACT, {**consumer.to_record(e), **NEW_VALUES}) for e in events[:2]]
    messages = [(e.region.encode(), v) for e, v in zip(events, current_values, strict=True)]

    received = through_kafka(kafka, messages + [(b"newer", v) for v in newer_values])

    current = [v for v in received if v in current_values]
    assert by_event_id([consumer.decode(CONTACT, v) for v in current]) == by_event_id(events)
    for value in current:  # written without the new fields: their defaults are filled in
        record = consumer.decode_record(CONTACT, value)
        assert (record["channel_detail"], record["source_system"]) == (None, "unknown")
    for value in (v for v in received if v in newer_values):  # its own version keeps the values
        assert {k: consumer.decode_record(CONTACT, value)[k] for k in NEW_VALUES} == NEW_VALUES


@pytest.mark.registry
def test_the_registry_refuses_a_version_that_breaks_backward_compatibility(
    registry_client: ConfluentSchemaRegistry,
) -> None:
    """`ccpulse schemas register` sets BACKWARD: a new field without a default (a new reader
    could not read what was written before) is refused with 409, a compatible one accepted."""
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    from streams.wire.schema_registry import register_contract_schemas

    subject, current = f"{CONTACT}-value", json.dumps(current_schema())
    done = register_contract_schemas(registry_client, {CONTACT: current})
    assert [(r.subject, r.compatibility) for r in done] == [(subject, "BACKWARD")]
    required = {"name": "site", "type": "string", "doc": "No default: old records lack it."}
    breaking = {**current_schema(), "fields": [*current_schema()["fields"], required]}
    with pytest.raises(SchemaRegistryError) as refused:
        registry_client.register(subject, json.dumps(breaking))
    assert refused.value.http_status_code == 409, refused.value
    newer_id = registry_client.register(subject, json.dumps(newer_schema()))
    assert [sid for sid, _ in registry_client.versions(subject)] == [done[0].schema_id, newer_id]
