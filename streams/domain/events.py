"""Input events of the contract (DESIGN.md section 2) as frozen dataclasses.

Times are UTC epoch milliseconds (``event_time_ms``); windows use them, never the
wall clock. ``validate_*`` check the invariants that Avro cannot express and raise
``InvalidEvent`` naming the offending value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from streams.domain.errors import (
    INCONSISTENT,
    NOT_PSEUDONYMISED,
    OUT_OF_RANGE,
    UNKNOWN_REGION,
    InvalidEvent,
)


class ContactEventType(StrEnum):
    ARRIVED = "ARRIVED"
    QUEUED = "QUEUED"
    OFFERED = "OFFERED"
    ANSWERED = "ANSWERED"
    HOLD_STARTED = "HOLD_STARTED"
    HOLD_ENDED = "HOLD_ENDED"
    TRANSFERRED = "TRANSFERRED"
    ESCALATED = "ESCALATED"
    ABANDONED = "ABANDONED"
    ENDED = "ENDED"
    ACW_ENDED = "ACW_ENDED"
    CALLBACK_REQUESTED = "CALLBACK_REQUESTED"


class Channel(StrEnum):
    VOICE = "VOICE"
    CHAT = "CHAT"
    MESSENGER = "MESSENGER"
    EMAIL = "EMAIL"


class Platform(StrEnum):
    """Messenger platform; only MESSENGER contacts carry one."""

    WHATSAPP = "WHATSAPP"
    TELEGRAM = "TELEGRAM"
    WECHAT = "WECHAT"
    VIBER = "VIBER"
    VK = "VK"


class Segment(StrEnum):
    STANDARD = "STANDARD"
    BUSINESS = "BUSINESS"
    VIP = "VIP"


class Resolution(StrEnum):
    RESOLVED_FIRST_LINE = "RESOLVED_FIRST_LINE"
    ESCALATED_SECOND_LINE = "ESCALATED_SECOND_LINE"
    UNRESOLVED = "UNRESOLVED"


class AgentState(StrEnum):
    LOGGED_IN = "LOGGED_IN"
    READY = "READY"
    NOT_READY = "NOT_READY"
    ON_CONTACT = "ON_CONTACT"
    ACW = "ACW"
    LOGGED_OUT = "LOGGED_OUT"


# Bounds that make a value "impossible" rather than merely unusual.
MIN_EVENT_TIME_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_EVENT_TIME_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
MAX_PRIORITY = 9
MAX_CHAT_CONCURRENCY = 10
REASON_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,31}")  # an agent NOT_READY reason: a code, never free text
MIN_SCORE, MAX_SCORE = 1, 5

# customer_ref is a keyed-hash pseudonym: 32 lowercase hex digits (see pseudonym.py).
CUSTOMER_REF_PATTERN = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True, slots=True)
class ContactEvent:
    event_id: str
    contact_id: str
    type: ContactEventType
    channel: Channel
    region: str
    queue: str
    language: str
    customer_ref: str
    event_time_ms: int
    platform: Platform | None = None
    segment: Segment = Segment.STANDARD
    priority: int = 0
    agent_id: str | None = None
    resolution: Resolution | None = None
    reason_code: str | None = None
    home_region: str | None = None


@dataclass(frozen=True, slots=True)
class AgentEvent:
    event_id: str
    agent_id: str
    region: str
    state: AgentState
    event_time_ms: int
    skills: tuple[str, ...] = field(default_factory=tuple)
    languages: tuple[str, ...] = field(default_factory=tuple)
    chat_concurrency: int = 1
    reason: str | None = None  # NOT_READY only: an aux reason code (BREAK, LUNCH, ...)


@dataclass(frozen=True, slots=True)
class SurveyEvent:
    event_id: str
    contact_id: str
    region: str
    channel: Channel
    score: int
    event_time_ms: int


InputEvent = ContactEvent | AgentEvent | SurveyEvent


def _check_time(event_time_ms: int) -> None:
    if not MIN_EVENT_TIME_MS <= event_time_ms < MAX_EVENT_TIME_MS:
        raise InvalidEvent(
            OUT_OF_RANGE,
            f"event_time_ms={event_time_ms} is outside [{MIN_EVENT_TIME_MS}, {MAX_EVENT_TIME_MS})",
        )


def _check_region(region: str, known_regions: frozenset[str], field_name: str = "region") -> None:
    if region not in known_regions:
        raise InvalidEvent(UNKNOWN_REGION, f"{field_name}={region!r} is not in the region catalogue")


def validate_contact(event: ContactEvent, known_regions: frozenset[str]) -> ContactEvent:
    _check_time(event.event_time_ms)
    _check_region(event.region, known_regions)
    if event.home_region is not None:
        _check_region(event.home_region, known_regions, "home_region")
    if not 0 <= event.priority <= MAX_PRIORITY:
        raise InvalidEvent(OUT_OF_RANGE, f"priority={event.priority} is outside [0, {MAX_PRIORITY}]")
    if not CUSTOMER_REF_PATTERN.match(event.customer_ref):
        raise InvalidEvent(
            NOT_PSEUDONYMISED,
            "customer_ref is not a 32-hex-digit pseudonym (value withheld: it may be a raw identifier)",
        )
    if (event.channel is Channel.MESSENGER) != (event.platform is not None):
        raise InvalidEvent(
            INCONSISTENT,
            f"platform={event.platform} with channel={event.channel.value}: "
            "exactly the MESSENGER channel carries a platform",
        )
    if event.resolution is not None and event.type is not ContactEventType.ENDED:
        raise InvalidEvent(INCONSISTENT, f"resolution on a {event.type.value} event; only ENDED has one")
    return event


def validate_agent(event: AgentEvent, known_regions: frozenset[str]) -> AgentEvent:
    _check_time(event.event_time_ms)
    _check_region(event.region, known_regions)
    if not 1 <= event.chat_concurrency <= MAX_CHAT_CONCURRENCY:
        raise InvalidEvent(
            OUT_OF_RANGE,
            f"chat_concurrency={event.chat_concurrency} is outside [1, {MAX_CHAT_CONCURRENCY}]",
        )
    if event.reason is not None:
        if event.state is not AgentState.NOT_READY:
            raise InvalidEvent(INCONSISTENT, f"reason on a {event.state.value} event (NOT_READY only)")
        if not REASON_CODE.fullmatch(event.reason):
            raise InvalidEvent(
                OUT_OF_RANGE, "reason is not a reason code (A-Z, 0-9 and _, at most 32 characters)"
            )  # the value is not repeated: free text could carry anything
    return event


def validate_survey(event: SurveyEvent, known_regions: frozenset[str]) -> SurveyEvent:
    _check_time(event.event_time_ms)
    _check_region(event.region, known_regions)
    if not MIN_SCORE <= event.score <= MAX_SCORE:
        raise InvalidEvent(OUT_OF_RANGE, f"score={event.score} is outside [{MIN_SCORE}, {MAX_SCORE}]")
    return event
