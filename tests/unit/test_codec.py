"""The codec: Confluent framing, domain round trips, schema evolution, and one stable
reason code for each kind of bad input (never an exception other than InvalidEvent)."""

from __future__ import annotations

import dataclasses
import io
import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from support.registry import CountingRegistry

from streams.domain.errors import InvalidEvent
from streams.domain.events import (
    AgentEvent,
    AgentState,
    Channel,
    ContactEvent,
    ContactEventType,
    Platform,
    Resolution,
    Segment,
    SurveyEvent,
)
from streams.settings import load_settings
from streams.wire.codec import HEADER_SIZE, Codec
from streams.wire.topic_contracts import SCHEMAS_DIR, load_examples, load_topic_contracts
from streams.wire.wire_schemas import wire_schema

pytestmark = pytest.mark.unit

CONTACT, AGENT, SURVEY = "cc.contact.events", "cc.agent.events", "cc.survey.events"
CATALOGUE_SAMPLE = frozenset({"RU-MOW", "RU-SPE", "RU-KGD", "RU-SVE", "RU-NVS", "RU-PRI", "RU-KAM", "RU-TA"})
PHONE = "+79120000000"
T0 = 1_778_490_000_000  # 2026-05-11T09:00:00Z


def known_regions() -> frozenset[str]:
    try:
        from streams.domain.regions import region_codes
    except ImportError:  # the region catalogue is optional for these tests
        return CATALOGUE_SAMPLE
    return CATALOGUE_SAMPLE | frozenset(region_codes())


CODEC = Codec.pinned(known_regions=known_regions())
RAW = Codec.pinned()  # no domain validation: builds payloads that only the consumer rejects

CONTACT_EVENT = ContactEvent(
    event_id="0b4c4f5e-8f4a-4a57-9a83-0d6d2f0c9a11",
    contact_id="c-mow-1",
    type=ContactEventType.ENDED,
    channel=Channel.VOICE,
    region="RU-MOW",
    queue="billing",
    language="ru",
    customer_ref="5f4dcc3b5aa765d61d8327deb882cf99",
    event_time_ms=T0,
    segment=Segment.VIP,
    priority=4,
    agent_id="a-mow-7",
    resolution=Resolution.RESOLVED_FIRST_LINE,
    reason_code="billing.dispute",
    home_region="RU-KGD",
)
WECHAT_EVENT = dataclasses.replace(
    CONTACT_EVENT,
    type=ContactEventType.QUEUED,
    channel=Channel.MESSENGER,
    platform=Platform.WECHAT,
    region="RU-PRI",
    language="zh",
    resolution=None,
    home_region=None,
)
AGENT_EVENT = AgentEvent(
    event_id="e-agent-1",
    agent_id="a-pri-2",
    region="RU-PRI",
    state=AgentState.READY,
    event_time_ms=T0,
    skills=("general", "roaming"),
    languages=("ru", "zh"),
    chat_concurrency=3,
)
SURVEY_EVENT = SurveyEvent(
    event_id="e-survey-1",
    contact_id="c-mow-1",
    region="RU-MOW",
    channel=Channel.VOICE,
    score=5,
    event_time_ms=T0,
)


def framed(schema_id: int, body: bytes) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + body


def contact_bytes(**changes: Any) -> bytes:
    return RAW.encode(CONTACT, dataclasses.replace(CONTACT_EVENT, **changes))


def corrupt_at(data: bytes, index: int, value: int) -> bytes:
    return data[:index] + bytes([value]) + data[index + 1 :]


def enum_index_position() -> int:
    """Where the `type` enum index sits: right after the contact_id text."""
    data = contact_bytes()
    return data.index(CONTACT_EVENT.contact_id.encode()) + len(CONTACT_EVENT.contact_id)


def queue_text_position() -> int:
    """First byte of the queue name's UTF-8 text."""
    return contact_bytes().index(CONTACT_EVENT.queue.encode())


BAD_INPUT: list[tuple[str, str, Callable[[], Any], str]] = [
    ("empty", CONTACT, lambda: b"", "empty"),
    ("tombstone", CONTACT, lambda: None, "empty"),
    ("bad magic", CONTACT, lambda: b"\x01" + contact_bytes()[1:], "bad_magic"),
    ("json instead of avro", CONTACT, lambda: b'{"type": "ARRIVED"}', "bad_magic"),
    ("truncated header", CONTACT, lambda: contact_bytes()[:3], "truncated"),
    ("header only", CONTACT, lambda: contact_bytes()[:HEADER_SIZE], "truncated"),
    ("truncated body", CONTACT, lambda: contact_bytes()[:-5], "truncated"),
    ("unknown schema id", CONTACT, lambda: framed(9999, contact_bytes()[HEADER_SIZE:]), "unknown_schema_id"),
    ("another topic's schema id", CONTACT, lambda: RAW.encode(SURVEY, SURVEY_EVENT), "unknown_schema_id"),
    ("trailing garbage", CONTACT, lambda: contact_bytes() + b"\x00\x01garbage", "trailing_bytes"),
    (
        "enum index out of range",
        CONTACT,
        lambda: corrupt_at(contact_bytes(), enum_index_position(), 100),
        "undecodable",
    ),
    (
        "invalid utf-8",
        CONTACT,
        lambda: corrupt_at(contact_bytes(), queue_text_position(), 0xFF),
        "undecodable",
    ),
    ("not bytes", CONTACT, lambda: "\x00\x00\x00\x00e", "undecodable"),
    (
        "survey score 0",
        SURVEY,
        lambda: RAW.encode(SURVEY, dataclasses.replace(SURVEY_EVENT, score=0)),
        "out_of_range",
    ),
    (
        "survey score 6",
        SURVEY,
        lambda: RAW.encode(SURVEY, dataclasses.replace(SURVEY_EVENT, score=6)),
        "out_of_range",
    ),
    ("negative event time", CONTACT, lambda: contact_bytes(event_time_ms=-1), "out_of_range"),
    ("1970 event time", CONTACT, lambda: contact_bytes(event_time_ms=0), "out_of_range"),
    ("priority 12", CONTACT, lambda: contact_bytes(priority=12), "out_of_range"),
    (
        "chat concurrency 0",
        AGENT,
        lambda: RAW.encode(AGENT, dataclasses.replace(AGENT_EVENT, chat_concurrency=0)),
        "out_of_range",
    ),
    ("unknown region", CONTACT, lambda: contact_bytes(region="RU-XXX"), "unknown_region"),
    ("unknown home region", CONTACT, lambda: contact_bytes(home_region="RU-XXX"), "unknown_region"),
    ("phone number as customer_ref", CONTACT, lambda: contact_bytes(customer_ref=PHONE), "not_pseudonymised"),
    (
        "messenger without platform",
        CONTACT,
        lambda: RAW.encode(CONTACT, dataclasses.replace(WECHAT_EVENT, platform=None)),
        "inconsistent",
    ),
    ("platform on voice", CONTACT, lambda: contact_bytes(platform=Platform.TELEGRAM), "inconsistent"),
    (
        "resolution before ENDED",
        CONTACT,
        lambda: RAW.encode(CONTACT, dataclasses.replace(WECHAT_EVENT, resolution=Resolution.UNRESOLVED)),
        "inconsistent",
    ),  # fmt: skip
    ("unknown topic", "cc.nope", lambda: contact_bytes(), "unknown_topic"),
]


@pytest.mark.parametrize(
    ("topic", "make", "reason"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT]
)
def test_bad_input_has_a_stable_reason(topic: str, make: Callable[[], Any], reason: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        CODEC.decode(topic, make())
    assert type(caught.value) is InvalidEvent
    assert caught.value.reason == reason, caught.value.detail
    assert CONTACT_EVENT.customer_ref not in str(caught.value)


def test_details_name_the_offending_value() -> None:
    with pytest.raises(InvalidEvent, match="0x01"):
        CODEC.decode(CONTACT, b"\x01" + contact_bytes()[1:])
    with pytest.raises(InvalidEvent) as caught:
        CODEC.decode(CONTACT, framed(9999, contact_bytes()[HEADER_SIZE:]))
    assert "9999" in caught.value.detail and CONTACT in caught.value.detail and "101" in caught.value.detail


def test_a_phone_number_never_reaches_the_error() -> None:
    with pytest.raises(InvalidEvent) as caught:
        CODEC.decode(CONTACT, contact_bytes(customer_ref=PHONE))
    assert caught.value.reason == "not_pseudonymised"
    assert PHONE not in str(caught.value) and "79120000000" not in repr(caught.value)


@pytest.mark.parametrize("topic", sorted(load_topic_contracts()))
def test_every_cut_and_every_flipped_byte_is_an_invalid_event_or_a_value(topic: str) -> None:
    rng = random.Random(topic)
    for _, example in load_examples(topic):
        data = RAW.encode(topic, RAW.from_record(topic, example))
        for cut in range(len(data)):
            with pytest.raises(InvalidEvent) as caught:
                CODEC.decode(topic, data[:cut])
            assert caught.value.reason in {"empty", "truncated"}, (cut, caught.value.detail)
        for _ in range(300):
            index = rng.randrange(HEADER_SIZE, len(data))
            try:
                CODEC.decode(topic, corrupt_at(data, index, rng.randrange(256)))
            except InvalidEvent:
                pass


# --- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "event"),
    [(CONTACT, CONTACT_EVENT), (CONTACT, WECHAT_EVENT), (AGENT, AGENT_EVENT), (SURVEY, SURVEY_EVENT)],
    ids=["contact", "wechat", "agent", "survey"],
)
def test_dataclass_round_trips_to_an_equal_value(topic: str, event: Any) -> None:
    data = CODEC.encode(topic, event)
    assert data[:HEADER_SIZE] == framed(load_topic_contracts()[topic].schema_id, b"")
    decoded = CODEC.decode(topic, data)
    assert decoded == event
    assert type(decoded) is type(event)
    assert CODEC.decode(topic, bytearray(data)) == event and CODEC.decode(topic, memoryview(data)) == event


def test_decoded_events_carry_domain_types() -> None:
    event = CODEC.decode(AGENT, CODEC.encode(AGENT, AGENT_EVENT))
    assert event.state is AgentState.READY and isinstance(event.skills, tuple)
    contact = CODEC.decode(CONTACT, CODEC.encode(CONTACT, WECHAT_EVENT))
    assert contact.platform is Platform.WECHAT and contact.type is ContactEventType.QUEUED
    assert isinstance(contact.event_time_ms, int)


def test_mapping_encodes_like_the_dataclass() -> None:
    record = CODEC.to_record(CONTACT_EVENT)
    assert CODEC.encode(CONTACT, record) == CODEC.encode(CONTACT, CONTACT_EVENT)
    assert json.loads(json.dumps(record)) == record


def test_output_topics_decode_to_dicts_with_bytes() -> None:
    record = {
        "original_topic": CONTACT, "original_partition": 1, "original_offset": 7, "original_key": b"RU-MOW",
        "original_value": b"\x01\x02", "reason": "bad_magic", "detail": "first byte 0x01", "failed_at_ms": T0,
        "consumer": "ccpulse/kpi",
    }  # fmt: skip
    decoded = CODEC.decode("cc.dead-letter", CODEC.encode("cc.dead-letter", record))
    assert decoded == record
    assert CODEC.to_record(decoded)["original_value"] == "AQI="


# --- encode rejects what does not fit ---------------------------------------------------


def contact_record(**changes: Any) -> dict[str, Any]:
    return {**CODEC.to_record(CONTACT_EVENT), **changes}


ENCODE_CASES: list[tuple[str, str, Any, str]] = [
    ("missing field", CONTACT, {k: v for k, v in contact_record().items() if k != "queue"}, "invalid_value"),
    ("extra field", CONTACT, contact_record(colour="red"), "invalid_value"),
    ("unknown enum symbol", CONTACT, contact_record(type="PARKED"), "invalid_value"),
    ("bool as int", CONTACT, contact_record(priority=True), "invalid_value"),
    ("float as int", CONTACT, contact_record(priority=1.5), "invalid_value"),
    ("int overflow", CONTACT, contact_record(priority=2**40), "invalid_value"),
    ("long overflow", CONTACT, contact_record(event_time_ms=2**70), "invalid_value"),
    ("string as long", CONTACT, contact_record(event_time_ms="now"), "invalid_value"),
    ("wrong dataclass for the topic", CONTACT, AGENT_EVENT, "invalid_value"),
    ("dataclass on an output topic", "cc.alerts", CONTACT_EVENT, "invalid_value"),
    ("not a record", SURVEY, [1, 2, 3], "invalid_value"),
    ("plain string for an enum", SURVEY, dataclasses.replace(SURVEY_EVENT, channel="VOICE"), "invalid_value"),
    ("unknown topic", "cc.nope", CONTACT_EVENT, "unknown_topic"),
    ("domain check on encode", CONTACT, dataclasses.replace(CONTACT_EVENT, priority=12), "out_of_range"),
    ("domain check on a mapping", CONTACT, contact_record(region="RU-XXX"), "unknown_region"),
    (
        "phone number on encode",
        CONTACT,
        dataclasses.replace(CONTACT_EVENT, customer_ref=PHONE),
        "not_pseudonymised",
    ),
    ("phone number as an int", CONTACT, contact_record(customer_ref=79120000000), "invalid_value"),
    (
        "phone number in a bad record",
        CONTACT,
        contact_record(customer_ref=PHONE, priority="x"),
        "invalid_value",
    ),
]


@pytest.mark.parametrize(
    ("topic", "value", "reason"), [c[1:] for c in ENCODE_CASES], ids=[c[0] for c in ENCODE_CASES]
)
def test_encode_rejects_values_that_do_not_fit(topic: str, value: Any, reason: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        CODEC.encode(topic, value)
    assert type(caught.value) is InvalidEvent
    assert caught.value.reason == reason, caught.value.detail
    assert "79120000000" not in str(caught.value)


def test_from_record_fills_defaults_and_rejects_bad_base64() -> None:
    minimal = {k: v for k, v in CODEC.to_record(SURVEY_EVENT).items()}
    assert CODEC.from_record(SURVEY, minimal) == SURVEY_EVENT
    agent = {k: v for k, v in CODEC.to_record(AGENT_EVENT).items() if k not in {"skills", "chat_concurrency"}}
    assert CODEC.from_record(AGENT, agent) == dataclasses.replace(AGENT_EVENT, skills=(), chat_concurrency=1)
    example = dict(load_examples("cc.dead-letter")[0][1], original_value="not base64!")
    with pytest.raises(InvalidEvent) as caught:
        CODEC.from_record("cc.dead-letter", example)
    assert caught.value.reason == "invalid_value"


# --- schema evolution ------------------------------------------------------------------------


def contact_schema(transform: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS_DIR / "contact_event.avsc").read_text())
    schema["fields"] = transform(schema["fields"])
    return schema


def written_with(schema: dict[str, Any], schema_id: int, record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    schemaless_writer(buf, parse_schema(wire_schema(schema)), record)
    return framed(schema_id, buf.getvalue())


def test_older_writer_without_a_new_optional_field_decodes() -> None:
    older = contact_schema(lambda fields: [f for f in fields if f["name"] != "home_region"])
    codec = Codec.pinned(known_regions=known_regions())
    codec.add_writer_schema(CONTACT, 100, older)
    record = {k: v for k, v in codec.to_record(CONTACT_EVENT).items() if k != "home_region"}
    decoded = codec.decode(CONTACT, written_with(older, 100, record))
    assert decoded == dataclasses.replace(CONTACT_EVENT, home_region=None)
    assert codec.known_schema_ids(CONTACT) == (100, 101)
    with pytest.raises(InvalidEvent) as caught:
        CODEC.decode(CONTACT, written_with(older, 100, record))  # not registered there
    assert caught.value.reason == "unknown_schema_id"


def test_newer_writer_with_an_extra_field_decodes() -> None:
    extra = {"name": "channel_detail", "type": ["null", "string"], "default": None, "doc": "newer field"}
    newer = contact_schema(lambda fields: [*fields, extra])
    codec = Codec.pinned()
    codec.add_writer_schema(CONTACT, 150, newer)
    record = {**codec.to_record(CONTACT_EVENT), "channel_detail": "sip-trunk-2"}
    assert codec.decode(CONTACT, written_with(newer, 150, record)) == CONTACT_EVENT


# --- construction ----------------------------------------------------------------------------


def test_pinned_ids_without_a_registry() -> None:
    settings = load_settings({})
    codec = Codec.for_registry_url(settings.schema_registry_url)
    assert {t: codec.schema_id(t) for t in codec.topics} == {
        t: c.schema_id for t, c in load_topic_contracts().items()
    }
    assert codec.known_regions is None
    assert Codec.for_registry_url("  ", known_regions=CATALOGUE_SAMPLE).schema_id(CONTACT) == 101


def test_registry_is_used_when_the_setting_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fake_with_registry(url: str, **kwargs: Any) -> str:
        calls.append(url)
        return "registry codec"

    monkeypatch.setattr(Codec, "with_registry", staticmethod(fake_with_registry))
    settings = load_settings({"CCPULSE_SCHEMA_REGISTRY_URL": "http://127.0.0.1:8081"})
    assert Codec.for_registry_url(settings.schema_registry_url) == "registry codec"
    assert calls == ["http://127.0.0.1:8081"]


# The registry tests run on the in-memory registry and on a real Apicurio Registry
# (`schema_registry` in tests/conftest.py; the apicurio case is marked `registry`).


def test_with_registry_uses_the_registry_ids_and_keeps_older_versions(
    schema_registry: CountingRegistry,
) -> None:
    registry = schema_registry
    older = contact_schema(lambda fields: [f for f in fields if f["name"] != "home_region"])
    older_id = registry.register(f"{CONTACT}-value", json.dumps(older))
    codec = Codec.with_registry("http://registry.invalid", registry=registry)
    for topic in load_topic_contracts():  # every topic's schema is registered under <topic>-value
        assert codec.schema_id(topic) in {sid for sid, _text in registry.versions(f"{topic}-value")}
    current_id = codec.schema_id(CONTACT)
    assert current_id != older_id and current_id not in {101, 102, 103}
    assert (
        CODEC.decode(CONTACT, framed(101, codec.encode(CONTACT, CONTACT_EVENT)[HEADER_SIZE:]))
        == CONTACT_EVENT
    )
    record = {k: v for k, v in codec.to_record(CONTACT_EVENT).items() if k != "home_region"}
    assert codec.decode(CONTACT, written_with(older, older_id, record)).home_region is None
    again = Codec.with_registry("http://registry.invalid", registry=registry)
    assert again.schema_id(CONTACT) == current_id


def test_an_id_registered_after_start_is_looked_up_once(schema_registry: CountingRegistry) -> None:
    """A producer upgraded after this consumer started: its newer schema id is fetched from
    the registry on first sight, then decoded from the cache; the extra field is dropped."""
    registry = schema_registry
    codec = Codec.with_registry("http://registry.invalid", registry=registry)
    extra = {"name": "channel_detail", "type": ["null", "string"], "default": None, "doc": "newer field"}
    newer = contact_schema(lambda fields: [*fields, extra])
    newer_id = registry.register(f"{CONTACT}-value", json.dumps(newer))
    assert newer_id not in codec.known_schema_ids(CONTACT)
    record = {**codec.to_record(CONTACT_EVENT), "channel_detail": "sip-trunk-2"}
    for _ in range(3):
        assert codec.decode(CONTACT, written_with(newer, newer_id, record)) == CONTACT_EVENT
    assert registry.lookups == 1 and newer_id in codec.known_schema_ids(CONTACT)
    assert "channel_detail" not in codec.decode_record(CONTACT, written_with(newer, newer_id, record))


def test_an_unregistered_or_foreign_id_is_unknown_and_asked_once(schema_registry: CountingRegistry) -> None:
    registry = schema_registry
    codec = Codec.with_registry("http://registry.invalid", registry=registry)
    body = codec.encode(CONTACT, CONTACT_EVENT)[HEADER_SIZE:]
    agent_id = codec.schema_id(AGENT)  # a real id, but of another record
    for schema_id, found in (
        (9999, "not in the registry"),
        (agent_id, "the registry has io.ccpulse.AgentEvent"),
    ):
        messages = []
        for _ in range(2):  # the second time from memory: no second registry call
            with pytest.raises(InvalidEvent) as failure:
                codec.decode(CONTACT, framed(schema_id, body))
            assert failure.value.reason == "unknown_schema_id"
            messages.append(str(failure.value))
        assert found in messages[0]
    assert registry.lookups == 2
    with pytest.raises(InvalidEvent, match="unknown_schema_id|is not known"):
        Codec.pinned().decode(CONTACT, framed(9999, body))  # pinned: no registry to ask
