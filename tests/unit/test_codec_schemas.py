"""The codec and schemas over time: schema evolution (an older or a newer writer decodes),
pinned ids without a registry, and the registry's ids, versions and unknown ids (on the
in-memory registry and on a real Apicurio Registry: `schema_registry` in tests/conftest.py)."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from support.codec_samples import (
    AGENT,
    AGENT_EVENT,
    CATALOGUE_SAMPLE,
    CODEC,
    CONTACT,
    CONTACT_EVENT,
    framed,
    known_regions,
)
from support.registry import CountingRegistry

from streams.domain.errors import InvalidEvent
from streams.domain.events import AgentState
from streams.settings import load_settings
from streams.wire.codec import HEADER_SIZE, Codec
from streams.wire.topic_contracts import SCHEMAS_DIR, load_topic_contracts
from streams.wire.wire_schemas import wire_schema

pytestmark = pytest.mark.unit


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


def test_an_agent_event_of_schema_102_decodes_without_a_reason() -> None:
    """cc.agent.events 104 added the NOT_READY reason; what producers of 102 write decodes
    (reason None), by the id the contract pins for it (previous_schemas)."""
    contract = load_topic_contracts()[AGENT]
    assert contract.schema_id == 104 and contract.previous_schemas == {102: "versions/agent_event.102.avsc"}
    older = json.loads((SCHEMAS_DIR / "versions" / "agent_event.102.avsc").read_text())
    on_break = dataclasses.replace(AGENT_EVENT, state=AgentState.NOT_READY, reason="BREAK")
    record = {k: v for k, v in CODEC.to_record(on_break).items() if k != "reason"}
    decoded = CODEC.decode(AGENT, written_with(older, 102, record))
    assert decoded == dataclasses.replace(on_break, reason=None)
    assert CODEC.decode(AGENT, CODEC.encode(AGENT, on_break)).reason == "BREAK"


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
