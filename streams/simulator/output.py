"""Raw engine items -> domain events (``SimRecord``) or Confluent-framed Avro bytes.

``materialise`` builds the frozen dataclasses of ``streams.domain.events``; the
``FastEncoder`` writes the same bytes as ``Codec.encode`` without building them
(per-contact fields are encoded once and cached on the contact), which is what makes
generation to a file or Kafka fast. A unit test checks byte equality with the codec.
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any, NamedTuple

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
from streams.simulator.model import AGENT, CONTACT, SURVEY, Agent, Contact, RawItem
from streams.wire.codec import Codec
from streams.wire.record_file import EncodedRecord
from streams.wire.topic_contracts import SCHEMAS_DIR
from streams.wire.topics import AGENT_TOPIC, CONTACT_TOPIC, SURVEY_TOPIC

_FRAME = struct.Struct(">Iq")  # file record: length of the rest, timestamp
_ARRIVED = ContactEventType.ARRIVED


class MalformedValue(NamedTuple):
    """A deliberately broken message value (fault injection); ``fault`` names the damage."""

    value: bytes
    fault: str


class SimRecord(NamedTuple):
    topic: str
    key: str
    event: ContactEvent | AgentEvent | SurveyEvent | MalformedValue
    timestamp_ms: int


def event_id_prefix(seed: int) -> str:
    """First 24 characters of a UUID (version 4 layout) fixed per seed; the event number ends it."""
    h = hashlib.sha256(f"ccpulse-simulator-{seed}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[12:15]}-8{h[15:18]}-"


def event_id(prefix: str, event_no: int) -> str:
    return f"{prefix}{event_no:012x}"


def materialise(item: RawItem, prefix: str) -> SimRecord:
    t, event_no, kind, subject, a, b = item
    eid = event_id(prefix, event_no)
    if kind == CONTACT:
        c: Contact = subject
        agent_id, resolution = b if b is not None else (None, None)
        arrived = a is ContactEventType.ARRIVED
        region = c.home if arrived else c.region
        home = None if arrived or c.home == c.region else c.home
        event = ContactEvent(
            eid, c.contact_id, a, c.channel, region, c.home_queue if arrived else c.queue, c.language,
            c.customer_ref, t, c.platform, c.segment, c.priority, agent_id, resolution, c.reason_code, home,
        )  # fmt: skip
        return SimRecord(CONTACT_TOPIC, region, event, t)
    if kind == AGENT:
        g: Agent = subject
        reason = b if a is AgentState.NOT_READY and isinstance(b, str) else None
        agent_event = AgentEvent(
            eid, g.agent_id, g.region, a, t, g.skills, g.languages, g.concurrency, reason
        )
        return SimRecord(AGENT_TOPIC, g.region, agent_event, t)
    if kind == SURVEY:
        c = subject
        return SimRecord(SURVEY_TOPIC, c.region, SurveyEvent(eid, c.contact_id, c.region, c.channel, a, t), t)
    value, fault = b
    return SimRecord(str(subject), bytes(a).decode(), MalformedValue(value, fault), t)


# --- Avro binary, by hand ---------------------------------------------------------------


def _uvarint(z: int) -> bytes:
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def long_bytes(n: int) -> bytes:
    """Avro int/long: zig-zag then base-128 varint."""
    return _uvarint((n << 1) ^ (n >> 63))


# An event time's low 14 zig-zag bits are two varint bytes from a table; the high part
# changes every 8.192 s and is cached.
_LOW14 = [bytes(((v & 0x7F) | 0x80, ((v >> 7) & 0x7F) | 0x80)) for v in range(1 << 14)]


class TimeBytes:
    """Avro long of an epoch-ms time (same bytes as long_bytes), fast for slowly rising times."""

    __slots__ = ("_high", "_high_bytes")

    def __init__(self) -> None:
        self._high, self._high_bytes = -1, b""

    def __call__(self, t: int) -> bytes:
        if t < 1 << 13:  # negative or small: the general form
            return long_bytes(t)
        z = t << 1
        high = z >> 14
        if high != self._high:
            self._high, self._high_bytes = high, _uvarint(high)
        return _LOW14[z & 0x3FFF] + self._high_bytes


def string_bytes(s: str) -> bytes:
    data = s.encode()
    n = len(data)
    return (bytes((n << 1,)) if n < 64 else long_bytes(n)) + data


def _optional(s: str | None) -> bytes:
    return b"\x00" if s is None else b"\x02" + string_bytes(s)


def _symbols(schema_file: str, field: str) -> dict[str, bytes]:
    schema = json.loads((SCHEMAS_DIR / schema_file).read_text())
    for f in schema["fields"]:
        if f["name"] == field:
            branch = next(
                b for b in (f["type"] if isinstance(f["type"], list) else [f["type"]]) if b != "null"
            )
            return {s: long_bytes(i) for i, s in enumerate(branch["symbols"])}
    msg = f"{schema_file} has no enum field {field!r}"
    raise KeyError(msg)


class FastEncoder:
    """Encodes raw items to the bytes ``Codec.encode`` would write for the same events."""

    def __init__(self, prefix: str, codec: Codec | None = None) -> None:
        codec = codec or Codec.pinned()
        self.prefix = prefix
        self._headers = {
            t: b"\x00" + codec.schema_id(t).to_bytes(4, "big")
            for t in (CONTACT_TOPIC, AGENT_TOPIC, SURVEY_TOPIC)
        }
        types = _symbols("contact_event.avsc", "type")
        self._types = {t: types[t.value] for t in ContactEventType}
        channels = _symbols("contact_event.avsc", "channel")
        self._channels = {c: channels[c.value] for c in Channel}
        platforms = _symbols("contact_event.avsc", "platform")
        self._platforms = {p: b"\x02" + platforms[p.value] for p in Platform}
        segments = _symbols("contact_event.avsc", "segment")
        self._segments = {s: segments[s.value] for s in Segment}
        resolutions = _symbols("contact_event.avsc", "resolution")
        self._resolutions = {r: b"\x02" + resolutions[r.value] for r in Resolution}
        states = _symbols("agent_event.avsc", "state")
        self._states = {s: states[s.value] for s in AgentState}
        survey_channels = _symbols("survey_event.avsc", "channel")
        self._survey_channels = {c: survey_channels[c.value] for c in Channel}
        self._agent_ids: dict[str, bytes] = {}
        self._keys: dict[str, bytes] = {}
        self._frame_heads: dict[tuple[str, bytes], bytes] = {}
        self._time = TimeBytes()
        self._contact_eid = self._headers[CONTACT_TOPIC] + b"\x48" + prefix.encode()

    def encode(self, item: RawItem) -> EncodedRecord:
        topic, key, value = self.parts(item)
        return EncodedRecord(topic, key, value, item[0])

    def frame(self, item: RawItem) -> bytes:
        """The record as written to a simulator file (see ``sinks``), in one step; contact
        events, the bulk, take an inlined path."""
        t, event_no, kind, c, a, b = item
        if kind != CONTACT:
            topic, key, value = self.parts(item)
            head = self._frame_head(topic, key)
            return _FRAME.pack(8 + len(head) + len(value), t) + head + value
        cache = c.cache or self._contact_cache(c)
        arrived = a is _ARRIVED
        tail = self._contact_tail(b)
        value = b"".join(
            (self._contact_eid, b"%012x" % event_no, cache[0], self._types[a], cache[1 if arrived else 2],
             self._time(t), cache[3], tail, cache[4 if arrived else 5])
        )  # fmt: skip
        head = cache[8 if arrived else 9]
        return _FRAME.pack(8 + len(head) + len(value), t) + head + value

    def _frame_head(self, topic: str, key: bytes) -> bytes:
        head = self._frame_heads.get((topic, key))
        if head is None:
            topic_b = topic.encode()
            head = self._frame_heads[(topic, key)] = (
                bytes((len(topic_b),)) + topic_b + len(key).to_bytes(2, "big") + key
            )
        return head

    def _agent_id_bytes(self, agent_id: str) -> bytes:
        """The optional agent_id followed by a null resolution."""
        encoded = self._agent_ids[agent_id] = _optional(agent_id) + b"\x00"
        return encoded

    def parts(self, item: RawItem) -> tuple[str, bytes, bytes]:
        """(topic, key, value) of a raw item."""
        t, event_no, kind, subject, a, b = item
        eid = b"\x48" + f"{self.prefix}{event_no:012x}".encode()  # 36 characters: length 0x48 zig-zagged
        if kind == CONTACT:
            return self._contact(t, eid, subject, a, b)
        if kind == AGENT:
            g: Agent = subject
            cache = g.cache or self._agent_cache(g)
            reason = _optional(b) if a is AgentState.NOT_READY and isinstance(b, str) else b"\x00"
            value = b"".join(
                (self._headers[AGENT_TOPIC], eid, cache[0], self._states[a], self._time(t), cache[1], reason)
            )
            return AGENT_TOPIC, cache[2], value
        if kind == SURVEY:
            c: Contact = subject
            value = b"".join(
                (self._headers[SURVEY_TOPIC], eid, string_bytes(c.contact_id), string_bytes(c.region),
                 self._survey_channels[c.channel], long_bytes(a), long_bytes(t))
            )  # fmt: skip
            return SURVEY_TOPIC, self._key(c.region), value
        value, _fault = b
        return str(subject), a, value

    def _key(self, region: str) -> bytes:
        key = self._keys.get(region)
        if key is None:
            key = self._keys[region] = region.encode()
        return key

    def _contact_tail(self, b: Any) -> bytes:
        """agent_id and resolution fields: both null, or the agent with or without a resolution."""
        if b is None:
            return b"\x00\x00"
        agent_id, resolution = b
        agent_b = self._agent_ids.get(agent_id) or self._agent_id_bytes(agent_id)
        return agent_b if resolution is None else agent_b[:-1] + self._resolutions[resolution]

    def _contact(
        self, t: int, eid: bytes, c: Contact, etype: ContactEventType, b: Any
    ) -> tuple[str, bytes, bytes]:
        cache = c.cache or self._contact_cache(c)
        arrived = etype is ContactEventType.ARRIVED
        tail = self._contact_tail(b)
        value = b"".join(
            (self._headers[CONTACT_TOPIC], eid, cache[0], self._types[etype], cache[1 if arrived else 2],
             self._time(t), cache[3], tail, cache[4 if arrived else 5])
        )  # fmt: skip
        return CONTACT_TOPIC, cache[6 if arrived else 7], value

    def _contact_cache(self, c: Contact) -> tuple[bytes, ...]:
        common = string_bytes(c.language) + string_bytes(c.customer_ref)
        channel = self._channels[c.channel]
        platform = b"\x00" if c.platform is None else self._platforms[c.platform]
        reason = _optional(c.reason_code)
        cache = (
            string_bytes(c.contact_id),
            channel + string_bytes(c.home) + string_bytes(c.home_queue) + common,
            channel + string_bytes(c.region) + string_bytes(c.queue) + common,
            platform + self._segments[c.segment] + long_bytes(c.priority),
            reason + b"\x00",
            reason + _optional(None if c.home == c.region else c.home),
            self._key(c.home),
            self._key(c.region),
            self._frame_head(CONTACT_TOPIC, self._key(c.home)),
            self._frame_head(CONTACT_TOPIC, self._key(c.region)),
        )
        c.cache = cache
        return cache

    def _agent_cache(self, g: Agent) -> tuple[bytes, ...]:
        def array(items: tuple[str, ...]) -> bytes:
            return (
                long_bytes(len(items)) + b"".join(string_bytes(s) for s in items) if items else b""
            ) + b"\x00"

        cache = (
            string_bytes(g.agent_id) + string_bytes(g.region),
            array(g.skills) + array(g.languages) + long_bytes(g.concurrency),
            self._key(g.region),
        )
        g.cache = cache
        return cache
