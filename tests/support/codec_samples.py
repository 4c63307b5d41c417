"""The sample events and codecs the codec tests share (tests/unit/test_codec.py,
test_codec_schemas.py): one of each input record, a validating and a raw codec, framing."""

from __future__ import annotations

import dataclasses

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
from streams.wire.codec import Codec

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
