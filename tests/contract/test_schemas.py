"""The topic contracts of schemas/: every schema parses with both Avro libraries, every
contract names an existing schema with a unique pinned id, the input schemas match the
domain dataclasses, and every example round-trips and reads the same with the
reference ``avro`` library as with fastavro. The example tests run with the pinned ids
and with ids from a real Schema Registry (Apicurio, marked ``registry``), whose schema
for each framed id is the contract's."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import avro.io
import avro.schema
import fastavro
import pytest

from streams.domain import events
from streams.wire.codec import HEADER_SIZE, Codec
from streams.wire.topic_contracts import SCHEMAS_DIR, load_examples, load_topic_contracts

pytestmark = pytest.mark.contract

CATALOGUE_SAMPLE = frozenset({"RU-MOW", "RU-SPE", "RU-KGD", "RU-SVE", "RU-NVS", "RU-PRI", "RU-KAM", "RU-TA"})


def known_regions() -> frozenset[str]:
    try:
        from streams.domain.regions import region_codes
    except ImportError:  # the region catalogue is optional for these tests
        return CATALOGUE_SAMPLE
    return CATALOGUE_SAMPLE | frozenset(region_codes())


SCHEMA_FILES = sorted(SCHEMAS_DIR.glob("*.avsc"))
CONTRACTS = load_topic_contracts()
EXAMPLES = [(topic, name, value) for topic in sorted(CONTRACTS) for name, value in load_examples(topic)]
EXAMPLE_IDS = [f"{topic}/{name}" for topic, name, _ in EXAMPLES]
INPUT_SCHEMAS = {
    "contact_event.avsc": events.ContactEvent,
    "agent_event.avsc": events.AgentEvent,
    "survey_event.avsc": events.SurveyEvent,
}
DOMAIN_ENUMS = {
    "ContactEventType": events.ContactEventType,
    "Channel": events.Channel,
    "Platform": events.Platform,
    "Segment": events.Segment,
    "Resolution": events.Resolution,
    "AgentState": events.AgentState,
}


@pytest.fixture(scope="module", params=["pinned", pytest.param("apicurio", marks=pytest.mark.registry)])
def codec(request: pytest.FixtureRequest) -> Iterator[Codec]:
    if request.param == "pinned":
        yield Codec.pinned(known_regions=known_regions())
        return
    from streams.wire.schema_registry import ConfluentSchemaRegistry

    registry = ConfluentSchemaRegistry(request.getfixturevalue("apicurio").url)
    yield Codec.with_registry("", known_regions=known_regions(), registry=registry)
    registry.close()


def load_avsc(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def named_types(node: Any) -> list[dict[str, Any]]:
    """Every record and enum defined anywhere in a schema."""
    found: list[dict[str, Any]] = []
    if isinstance(node, list):
        for item in node:
            found += named_types(item)
    elif isinstance(node, dict):
        if node.get("type") in ("record", "enum"):
            found.append(node)
        for key in ("fields", "items", "type"):
            if key in node and not isinstance(node[key], str):
                found += named_types(node[key])
    return found


def bytes_fields(schema: dict[str, Any]) -> set[str]:
    def has_bytes(t: Any) -> bool:
        return t == "bytes" or (isinstance(t, list) and "bytes" in t)

    return {f["name"] for f in schema["fields"] if has_bytes(f["type"])}


def example_as_wire_record(topic: str, example: dict[str, Any]) -> dict[str, Any]:
    """The example with base64 bytes fields decoded (the convention of schemas/README.md)."""
    schema = load_avsc(CONTRACTS[topic].schema_path())
    record = dict(example)
    for name in bytes_fields(schema):
        if record.get(name) is not None:
            record[name] = base64.b64decode(record[name], validate=True)
    return record


def datetimes_to_ms(value: Any) -> Any:
    """The reference library returns timestamp-millis as aware datetimes; compare in ms."""
    if isinstance(value, dt.datetime):
        assert value.tzinfo is not None
        return (value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)
    if isinstance(value, dict):
        return {k: datetimes_to_ms(v) for k, v in value.items()}
    if isinstance(value, list):
        return [datetimes_to_ms(v) for v in value]
    return value


def ms_to_datetimes(value: Any, schema: dict[str, Any]) -> Any:
    """Inverse for the reference writer: timestamp-millis fields as aware datetimes."""
    out = dict(value)
    for f in schema["fields"]:
        if isinstance(f["type"], dict) and f["type"].get("logicalType") == "timestamp-millis":
            out[f["name"]] = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
                milliseconds=out[f["name"]]
            )
    return out


# --- schemas ---------------------------------------------------------------------------


def test_there_is_one_schema_per_record() -> None:
    assert {p.name for p in SCHEMA_FILES} == {
        "contact_event.avsc", "agent_event.avsc", "survey_event.avsc", "routing_decision.avsc",
        "kpi_snapshot.avsc", "queue_state.avsc", "alert.avsc", "dead_letter.avsc", "staffing_plan.avsc",
    }  # fmt: skip


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_schema_parses_with_avro_and_fastavro(path: Path) -> None:
    text = path.read_text()
    parsed = avro.schema.parse(text)
    assert isinstance(parsed, avro.schema.RecordSchema)
    assert parsed.namespace == "io.ccpulse"
    fastavro.parse_schema(json.loads(text))


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_every_field_and_type_is_documented(path: Path) -> None:
    for named in named_types(load_avsc(path)):
        assert named.get("doc"), f"{path.name}: type {named['name']} has no doc"
        for f in named.get("fields", []):
            assert f.get("doc"), f"{path.name}: field {named['name']}.{f['name']} has no doc"


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_times_are_timestamp_millis_longs(path: Path) -> None:
    for f in load_avsc(path)["fields"]:
        if f["name"].endswith("_ms") and not f["name"].endswith(("wait_ms", "talk_ms", "hold_ms", "acw_ms")):
            assert f["type"] == {"type": "long", "logicalType": "timestamp-millis"}, f["name"]


@pytest.mark.parametrize("file_name", sorted(INPUT_SCHEMAS))
def test_input_schema_matches_the_domain_dataclass(file_name: str) -> None:
    schema = load_avsc(SCHEMAS_DIR / file_name)
    cls = INPUT_SCHEMAS[file_name]
    assert [f["name"] for f in schema["fields"]] == [f.name for f in dataclasses.fields(cls)]
    for f in schema["fields"]:
        default = next(d for d in dataclasses.fields(cls) if d.name == f["name"])
        has_default = (
            default.default is not dataclasses.MISSING or default.default_factory is not dataclasses.MISSING
        )
        assert ("default" in f) == has_default, f["name"]
    for named in named_types(schema):
        if named["type"] == "enum":
            assert named["symbols"] == [m.value for m in DOMAIN_ENUMS[named["name"]]], named["name"]


# --- topic contracts ---------------------------------------------------------------------


def test_every_schema_has_exactly_one_topic() -> None:
    assert sorted(c.value_schema for c in CONTRACTS.values()) == sorted(p.name for p in SCHEMA_FILES)


@pytest.mark.parametrize("topic", sorted(CONTRACTS))
def test_contract_references_an_existing_schema(topic: str) -> None:
    contract = CONTRACTS[topic]
    assert contract.schema_path().is_file(), contract.value_schema
    assert contract.partitions > 0 and contract.replication_factor == 3
    assert contract.topic_config()["min.insync.replicas"] == "2"
    assert contract.cleanup_policy in {"delete", "compact", "compact,delete"}
    assert contract.producers and contract.consumers and contract.description and contract.key


def test_pinned_schema_ids_are_unique_and_as_agreed() -> None:
    ids = {topic: c.schema_id for topic, c in CONTRACTS.items()}
    # 104: agent events gained the NOT_READY reason (102 stays readable)
    # 206: routing decisions gained the reasons NO_AGENTS_HOME and NO_STATE (201 stays readable)
    assert len(set(ids.values())) == len(ids)
    assert ids == {
        "cc.contact.events": 101, "cc.agent.events": 104, "cc.survey.events": 103,
        "cc.routing.decisions": 206, "cc.kpi.snapshots": 202, "cc.queue.state": 203,
        "cc.alerts": 204, "cc.dead-letter": 205, "cc.staffing.plan": 207,
    }  # fmt: skip


@pytest.mark.parametrize("topic", sorted(CONTRACTS))
def test_every_topic_has_at_least_two_examples(topic: str) -> None:
    assert len(load_examples(topic)) >= 2


# --- examples ----------------------------------------------------------------------------


@pytest.mark.parametrize(("topic", "name", "example"), EXAMPLES, ids=EXAMPLE_IDS)
def test_example_round_trips_to_equal_json(
    codec: Codec, topic: str, name: str, example: dict[str, Any]
) -> None:
    value = codec.from_record(topic, example)
    data = codec.encode(topic, value)
    assert data[0] == 0 and int.from_bytes(data[1:HEADER_SIZE], "big") == codec.schema_id(topic)
    decoded = codec.decode(topic, data)
    assert decoded == value
    assert codec.to_record(decoded) == example
    assert json.loads(json.dumps(codec.to_record(decoded))) == example


@pytest.mark.parametrize(("topic", "name", "example"), EXAMPLES, ids=EXAMPLE_IDS)
def test_reference_avro_reads_what_fastavro_wrote(
    codec: Codec, topic: str, name: str, example: dict[str, Any]
) -> None:
    schema_text = CONTRACTS[topic].schema_path().read_text()
    body = codec.encode(topic, codec.from_record(topic, example))[HEADER_SIZE:]
    buf = io.BytesIO(body)
    reader = avro.io.DatumReader(avro.schema.parse(schema_text))
    read = reader.read(avro.io.BinaryDecoder(buf))
    assert buf.tell() == len(body)
    assert datetimes_to_ms(read) == example_as_wire_record(topic, example)


@pytest.mark.parametrize(("topic", "name", "example"), EXAMPLES, ids=EXAMPLE_IDS)
def test_reference_avro_writes_identical_bytes(
    codec: Codec, topic: str, name: str, example: dict[str, Any]
) -> None:
    schema_text = CONTRACTS[topic].schema_path().read_text()
    record = ms_to_datetimes(example_as_wire_record(topic, example), json.loads(schema_text))
    buf = io.BytesIO()
    avro.io.DatumWriter(avro.schema.parse(schema_text)).write(record, avro.io.BinaryEncoder(buf))
    assert codec.encode(topic, codec.from_record(topic, example))[HEADER_SIZE:] == buf.getvalue()


@pytest.mark.parametrize("topic", sorted(CONTRACTS))
def test_framed_ids_are_pinned_or_resolve_in_the_registry(
    codec: Codec, topic: str, request: pytest.FixtureRequest
) -> None:
    """Pinned: the contract's id. Registry: what the registry serves for the framed id (what
    any Confluent deserializer fetches) is the contract's schema."""
    schema_id = codec.schema_id(topic)
    if request.node.callspec.params["codec"] == "pinned":
        assert schema_id == CONTRACTS[topic].schema_id
        return
    from streams.wire.schema_registry import ConfluentSchemaRegistry

    registry = ConfluentSchemaRegistry(request.getfixturevalue("apicurio").url)
    try:
        served = registry.schema(schema_id)
    finally:
        registry.close()
    assert served is not None and json.loads(served) == load_avsc(CONTRACTS[topic].schema_path())


def test_contact_examples_cover_the_agreed_cases() -> None:
    contacts = [value for _, value in load_examples("cc.contact.events")]
    assert any(
        c["channel"] == "MESSENGER" and c["platform"] == "WECHAT" and c["language"] == "zh" for c in contacts
    )
    assert any(c["channel"] == "VOICE" and c["type"] == "ENDED" and c["resolution"] for c in contacts)
    assert any(c["home_region"] for c in contacts), "an overflowed contact"
    assert {c["channel"] for c in contacts} == {m.value for m in events.Channel}


def test_example_identities_are_pseudonyms_and_regions_are_catalogued() -> None:
    for topic, name, example in EXAMPLES:
        if "customer_ref" in example:
            assert re.fullmatch(r"[0-9a-f]{32}", example["customer_ref"]), f"{topic}/{name}"
        for key in ("region", "target_region", "home_region"):
            if example.get(key) is not None:
                assert example[key] in CATALOGUE_SAMPLE, f"{topic}/{name}: {key}={example[key]}"
