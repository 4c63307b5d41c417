"""The codec: Confluent framing, domain round trips, schema evolution, and one stable
reason code for each kind of bad input (never an exception other than InvalidEvent)."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from support.codec_samples import (
    AGENT,
    AGENT_EVENT,
    CODEC,
    CONTACT,
    CONTACT_EVENT,
    PHONE,
    RAW,
    SURVEY,
    SURVEY_EVENT,
    T0,
    WECHAT_EVENT,
    framed,
)

from streams.domain.errors import InvalidEvent
from streams.domain.events import (
    AgentState,
    ContactEventType,
    Platform,
    Resolution,
)
from streams.wire.codec import HEADER_SIZE
from streams.wire.topic_contracts import load_examples, load_topic_contracts

pytestmark = pytest.mark.unit


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
    (
        "NOT_READY reason on a READY event",
        AGENT,
        lambda: RAW.encode(AGENT, dataclasses.replace(AGENT_EVENT, reason="BREAK")),
        "inconsistent",
    ),
    (
        "NOT_READY reason that is free text",
        AGENT,
        lambda: RAW.encode(AGENT, dataclasses.replace(AGENT_EVENT, state=AgentState.NOT_READY, reason=PHONE)),
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


ON_BREAK = dataclasses.replace(AGENT_EVENT, state=AgentState.NOT_READY, reason="LUNCH")


# --- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "event"),
    [
        (CONTACT, CONTACT_EVENT),
        (CONTACT, WECHAT_EVENT),
        (AGENT, AGENT_EVENT),
        (AGENT, ON_BREAK),
        (SURVEY, SURVEY_EVENT),
    ],
    ids=["contact", "wechat", "agent", "agent-on-break", "survey"],
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
