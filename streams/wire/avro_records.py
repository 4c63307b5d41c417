"""Domain input events <-> Avro record dicts (field names of schemas/*.avsc).

One binding per input topic: to_record / from_record / validate. Enums travel as their
symbols, lists as arrays, times as int epoch milliseconds. Used by the codec; pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
    validate_agent,
    validate_contact,
    validate_survey,
)
from streams.wire.topics import AGENT_TOPIC, CONTACT_TOPIC, SURVEY_TOPIC


def _symbols(enum: Any) -> dict[str, Any]:
    return {member.value: member for member in enum}


_CONTACT_TYPES, _CHANNELS, _PLATFORMS = _symbols(ContactEventType), _symbols(Channel), _symbols(Platform)
_SEGMENTS, _RESOLUTIONS, _AGENT_STATES = _symbols(Segment), _symbols(Resolution), _symbols(AgentState)


def _contact_to_record(e: ContactEvent) -> dict[str, Any]:
    return {
        "event_id": e.event_id,
        "contact_id": e.contact_id,
        "type": e.type.value,
        "channel": e.channel.value,
        "region": e.region,
        "queue": e.queue,
        "language": e.language,
        "customer_ref": e.customer_ref,
        "event_time_ms": e.event_time_ms,
        "platform": None if e.platform is None else e.platform.value,
        "segment": e.segment.value,
        "priority": e.priority,
        "agent_id": e.agent_id,
        "resolution": None if e.resolution is None else e.resolution.value,
        "reason_code": e.reason_code,
        "home_region": e.home_region,
    }


def _contact_from_record(r: dict[str, Any]) -> ContactEvent:
    platform, resolution = r["platform"], r["resolution"]
    return ContactEvent(
        event_id=r["event_id"],
        contact_id=r["contact_id"],
        type=_CONTACT_TYPES[r["type"]],
        channel=_CHANNELS[r["channel"]],
        region=r["region"],
        queue=r["queue"],
        language=r["language"],
        customer_ref=r["customer_ref"],
        event_time_ms=r["event_time_ms"],
        platform=None if platform is None else _PLATFORMS[platform],
        segment=_SEGMENTS[r["segment"]],
        priority=r["priority"],
        agent_id=r["agent_id"],
        resolution=None if resolution is None else _RESOLUTIONS[resolution],
        reason_code=r["reason_code"],
        home_region=r["home_region"],
    )


def _agent_to_record(e: AgentEvent) -> dict[str, Any]:
    return {
        "event_id": e.event_id,
        "agent_id": e.agent_id,
        "region": e.region,
        "state": e.state.value,
        "event_time_ms": e.event_time_ms,
        "skills": list(e.skills),
        "languages": list(e.languages),
        "chat_concurrency": e.chat_concurrency,
        "reason": e.reason,
    }


def _agent_from_record(r: dict[str, Any]) -> AgentEvent:
    return AgentEvent(
        event_id=r["event_id"],
        agent_id=r["agent_id"],
        region=r["region"],
        state=_AGENT_STATES[r["state"]],
        event_time_ms=r["event_time_ms"],
        skills=tuple(r["skills"]),
        languages=tuple(r["languages"]),
        chat_concurrency=r["chat_concurrency"],
        reason=r.get("reason"),
    )


def _survey_to_record(e: SurveyEvent) -> dict[str, Any]:
    return {
        "event_id": e.event_id,
        "contact_id": e.contact_id,
        "region": e.region,
        "channel": e.channel.value,
        "score": e.score,
        "event_time_ms": e.event_time_ms,
    }


def _survey_from_record(r: dict[str, Any]) -> SurveyEvent:
    return SurveyEvent(
        event_id=r["event_id"],
        contact_id=r["contact_id"],
        region=r["region"],
        channel=_CHANNELS[r["channel"]],
        score=r["score"],
        event_time_ms=r["event_time_ms"],
    )


@dataclass(frozen=True)
class InputBinding:
    event_type: type
    to_record: Callable[[Any], dict[str, Any]]
    from_record: Callable[[dict[str, Any]], Any]
    validate: Callable[[Any, frozenset[str]], Any]


INPUT_BINDINGS: dict[str, InputBinding] = {
    CONTACT_TOPIC: InputBinding(ContactEvent, _contact_to_record, _contact_from_record, validate_contact),
    AGENT_TOPIC: InputBinding(AgentEvent, _agent_to_record, _agent_from_record, validate_agent),
    SURVEY_TOPIC: InputBinding(SurveyEvent, _survey_to_record, _survey_from_record, validate_survey),
}
BINDING_BY_TYPE = {b.event_type: b for b in INPUT_BINDINGS.values()}
