"""Dead letters carry no raw subscriber identity: the sanitiser rewrites a decodable body's
identity fields with their keyed pseudonym (or withholds them without a key), scrubs the
detail and the key, and passes bytes it cannot decode through unchanged."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest

from streams.domain.errors import InvalidEvent
from streams.domain.events import CUSTOMER_REF_PATTERN, Channel, ContactEvent, ContactEventType
from streams.domain.pseudonym import pseudonymise
from streams.domain.regions import region_codes
from streams.engine.dead_letters import IDENTITY_FIELDS, DeadLetterSanitiser
from streams.history.backfill import history_row
from streams.wire.codec import HEADER_SIZE, WITHHELD, Codec
from streams.wire.topic_contracts import SCHEMAS_DIR, load_topic_contracts
from streams.wire.topics import DEAD_LETTER_TOPIC

pytestmark = pytest.mark.unit

CONTACT = "cc.contact.events"
KEY = b"unit-test-pseudonym-key"
PHONE, EMAIL = "+79161234567", "ivan.petrov@example.com"
CODEC = Codec.pinned(known_regions=region_codes())  # as the worker has it: validating
RAW = Codec.pinned()  # builds the payloads a careless producer would send
EVENT = ContactEvent(
    event_id="7d1c1d0e-1b43-4c3a-8f53-3f0d6b1f7a01", contact_id="c-1", type=ContactEventType.ARRIVED,
    channel=Channel.VOICE, region="RU-MOW", queue="billing", language="ru",
    customer_ref="5f4dcc3b5aa765d61d8327deb882cf99", event_time_ms=1_778_490_000_000,
)  # fmt: skip


def contact_bytes(**changes: object) -> bytes:
    return RAW.encode(CONTACT, dataclasses.replace(EVENT, **changes))  # type: ignore[arg-type]


def rejection(data: bytes) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        CODEC.decode(CONTACT, data)
    return caught.value


def raw_forms(identity: str) -> list[bytes]:
    """The identity as sent and its normalised digits: neither may survive."""
    digits = "".join(ch for ch in identity if ch.isdigit())
    return [identity.encode()] + ([digits.encode()] if "@" not in identity else [])


@pytest.mark.parametrize("identity", [PHONE, EMAIL, "+7 (916) 123-45-67", "Ivan.Petrov@Example.COM"])
def test_raw_identity_becomes_its_keyed_pseudonym(identity: str) -> None:
    data = contact_bytes(customer_ref=identity)
    exc = rejection(data)
    assert exc.reason == "not_pseudonymised"
    cleaned = DeadLetterSanitiser(CODEC, KEY).clean(CONTACT, data, b"RU-MOW", exc.detail)
    for raw in raw_forms(identity):
        assert raw not in cleaned.value
    assert identity not in cleaned.detail
    assert cleaned.replaced == 1
    assert cleaned.value[:HEADER_SIZE] == data[:HEADER_SIZE]  # same Confluent framing and schema id
    record = CODEC.decode_record(CONTACT, cleaned.value)
    assert record["customer_ref"] == pseudonymise(identity, KEY)
    assert CUSTOMER_REF_PATTERN.match(record["customer_ref"])
    assert {**record, "customer_ref": None} == {**CODEC.decode_record(CONTACT, data), "customer_ref": None}
    assert CODEC.decode(CONTACT, cleaned.value).customer_ref == pseudonymise(identity, KEY)  # now valid


def test_a_detail_naming_the_raw_value_loses_it() -> None:
    data = contact_bytes(customer_ref=EMAIL)
    detail = f"customer_ref={EMAIL!r} is not a pseudonym; value {EMAIL}"
    cleaned = DeadLetterSanitiser(CODEC, KEY).clean(CONTACT, data, None, detail)
    assert EMAIL not in cleaned.detail and cleaned.detail.count(WITHHELD) == 2


def test_an_already_pseudonymised_ref_is_left_byte_for_byte() -> None:
    data = contact_bytes()
    cleaned = DeadLetterSanitiser(CODEC, KEY).clean(CONTACT, data, b"RU-MOW", "priority=12 is outside [0, 9]")
    assert (cleaned.value, cleaned.key, cleaned.detail, cleaned.replaced) == (
        data, b"RU-MOW", "priority=12 is outside [0, 9]", 0,
    )  # fmt: skip


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00\x00\x00" + PHONE.encode(),  # unknown schema id 0
        contact_bytes(customer_ref=PHONE)[:-3],  # truncated
        json.dumps({"customer_ref": PHONE}).encode(),  # bad magic
        b"",
    ],
    ids=["unknown-schema-id", "truncated", "json", "empty"],
)
def test_undecodable_bytes_pass_unchanged(data: bytes) -> None:
    cleaned = DeadLetterSanitiser(CODEC, KEY).clean(CONTACT, data, b"RU-MOW", "x")
    assert (cleaned.value, cleaned.replaced) == (data, 0)


def test_any_reason_gets_the_identity_pseudonymised() -> None:
    data = contact_bytes(customer_ref=PHONE, region="XX-NOWHERE")
    exc = rejection(data)
    assert exc.reason == "unknown_region"  # checked before the ref
    cleaned = DeadLetterSanitiser(CODEC, KEY).clean(CONTACT, data, None, exc.detail)
    assert CODEC.decode_record(CONTACT, cleaned.value)["customer_ref"] == pseudonymise(PHONE, KEY)
    assert "XX-NOWHERE" in cleaned.detail  # a region is not an identity


def test_without_a_key_the_identity_is_withheld_and_stays_so() -> None:
    data = contact_bytes(customer_ref=PHONE)
    withheld = DeadLetterSanitiser(CODEC).clean(CONTACT, data, None, "")
    assert CODEC.decode_record(CONTACT, withheld.value)["customer_ref"] == WITHHELD
    assert PHONE.encode() not in withheld.value
    again = DeadLetterSanitiser(CODEC, KEY).clean(CONTACT, withheld.value, None, "")
    assert (again.value, again.replaced) == (withheld.value, 0)


def test_the_message_key_loses_the_raw_value_and_emails_leave_every_detail() -> None:
    data = contact_bytes(customer_ref=PHONE)
    cleaned = DeadLetterSanitiser(CODEC, KEY).clean(CONTACT, data, f"RU-MOW|{PHONE}".encode(), "")
    assert cleaned.key == f"RU-MOW|{pseudonymise(PHONE, KEY)}".encode()
    garbage = DeadLetterSanitiser(CODEC, KEY).clean(CONTACT, b"\x01junk", None, f"from <{EMAIL}>: bad")
    assert garbage.detail == f"from <{WITHHELD}>: bad"


def test_other_topics_are_not_rewritten() -> None:
    data = contact_bytes(customer_ref=PHONE)
    cleaned = DeadLetterSanitiser(CODEC, KEY).clean("cc.agent.events", data, None, "")
    assert cleaned.value == data


def test_a_dead_letter_record_round_trips_without_the_raw_value() -> None:
    """What the worker's _dead_letter does: sanitise the record, encode it on cc.dead-letter."""
    data = contact_bytes(customer_ref=EMAIL)
    exc = rejection(data)
    record = {
        "original_topic": CONTACT, "original_partition": 3, "original_offset": 41, "original_key": b"RU-MOW",
        "original_value": data, "reason": exc.reason, "detail": exc.detail, "failed_at_ms": 1_778_490_000_000,
        "consumer": "ccpulse-kpi",
    }  # fmt: skip
    encoded = CODEC.encode(DEAD_LETTER_TOPIC, DeadLetterSanitiser(CODEC, KEY).sanitise(record))
    assert EMAIL.encode() not in encoded
    letter = CODEC.decode(DEAD_LETTER_TOPIC, encoded)
    position = ("original_topic", "original_partition", "original_offset", "reason")
    assert tuple(letter[k] for k in position) == (CONTACT, 3, 41, "not_pseudonymised")
    assert CODEC.decode(CONTACT, letter["original_value"]).customer_ref == pseudonymise(EMAIL, KEY)


def test_backfill_dead_letter_rows_withhold_the_identity() -> None:
    table, row = history_row(CODEC, CONTACT, contact_bytes(customer_ref=PHONE), 7, 1_778_490_000)
    assert table == "dead_letters" and row is not None
    stored = base64.b64decode(row[4])
    assert PHONE.encode() not in stored and PHONE not in str(row)
    assert CODEC.decode_record(CONTACT, stored)["customer_ref"] == WITHHELD


def test_the_key_is_not_in_the_repr() -> None:
    assert KEY.decode() not in repr(DeadLetterSanitiser(CODEC, KEY))


def test_encode_record_inverts_decode_record() -> None:
    data = contact_bytes()
    assert CODEC.encode_record(CONTACT, CODEC.decode_record(CONTACT, data)) == data


def test_identity_fields_match_the_schemas() -> None:
    """Every input field whose schema doc calls it a pseudonymised identity is sanitised."""
    documented: dict[str, tuple[str, ...]] = {}
    for topic, contract in load_topic_contracts(SCHEMAS_DIR).items():
        schema = json.loads(contract.schema_path(SCHEMAS_DIR).read_text())
        names = tuple(f["name"] for f in schema["fields"] if "pseudonymised" in f.get("doc", "").lower())
        if names and topic != DEAD_LETTER_TOPIC:
            documented[topic] = names
    assert documented == dict(IDENTITY_FIELDS)
