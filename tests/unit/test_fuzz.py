"""Hostile input (part of issue 9): the codec and the stream's entry points never crash.

Hypothesis feeds arbitrary bytes, damaged real messages and arbitrary field values. The
codec either returns a valid event or raises InvalidEvent with a known reason code (which
the worker turns into a dead letter); the KPI state functions accept any sequence of valid
events, in any order, duplicated, without raising and without negative counters.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.domain import errors
from streams.domain.errors import InvalidEvent
from streams.domain.events import Channel, ContactEvent, ContactEventType
from streams.domain.regions import region_codes
from streams.jobs import kpi_apply as kpi
from streams.jobs.kpi_apply import KpiConfig
from streams.jobs.state import PartitionState, dumps, loads
from streams.wire import codec as codec_module
from streams.wire.codec import Codec
from streams.wire.topic_contracts import load_examples
from streams.wire.topics import AGENT_TOPIC, CONTACT_TOPIC, SURVEY_TOPIC

pytestmark = pytest.mark.unit
CODEC = Codec.pinned(known_regions=region_codes())
TOPICS = (CONTACT_TOPIC, AGENT_TOPIC, SURVEY_TOPIC)
REASONS = {
    errors.OUT_OF_RANGE, errors.UNKNOWN_REGION, errors.NOT_PSEUDONYMISED, errors.INCONSISTENT,
    codec_module.EMPTY, codec_module.BAD_MAGIC, codec_module.TRUNCATED,
    codec_module.UNKNOWN_SCHEMA_ID, codec_module.UNDECODABLE, codec_module.TRAILING_BYTES,
    codec_module.UNKNOWN_TOPIC, codec_module.INVALID_VALUE,
}  # fmt: skip
EXAMPLES = [
    (topic, CODEC.encode(topic, CODEC.from_record(topic, record)))
    for topic in TOPICS
    for _name, record in load_examples(topic)
]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decode_or_reject(topic: str, data: bytes) -> object | None:
    try:
        return CODEC.decode(topic, data)
    except InvalidEvent as exc:
        assert exc.reason in REASONS, exc.reason
        assert exc.detail
        return None


@FUZZ
@given(topic=st.sampled_from(TOPICS), data=st.binary(max_size=300))
def test_arbitrary_bytes_are_rejected_with_a_reason(topic: str, data: bytes) -> None:
    decode_or_reject(topic, data)


@FUZZ
@given(
    example=st.sampled_from(EXAMPLES),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=6),
    cut=st.integers(0, 10_000),
    tail=st.binary(max_size=8),
)
def test_damaged_real_messages_decode_valid_or_are_rejected(
    example: tuple[str, bytes], flips: list[tuple[int, int]], cut: int, tail: bytes
) -> None:
    topic, original = example
    data = bytearray(original)
    for position, mask in flips:
        data[position % len(data)] ^= mask
    damaged = bytes(data[: max(1, cut % (len(data) + 1))]) + tail
    event = decode_or_reject(topic, damaged)
    if event is not None:  # whatever decodes is a valid event again
        assert decode_or_reject(topic, CODEC.encode(topic, event)) == event


contact_events = st.builds(
    ContactEvent,
    event_id=st.text("abcdef0123", min_size=1, max_size=4),
    contact_id=st.sampled_from(["c1", "c2", "c3"]),
    type=st.sampled_from(list(ContactEventType)),
    channel=st.sampled_from(list(Channel)),
    region=st.sampled_from(["RU-MOW", "RU-KAM"]),
    queue=st.just("general"),
    language=st.just("ru"),
    customer_ref=st.just("0" * 32),
    event_time_ms=st.integers(1_795_400_000_000, 1_795_400_000_000 + 7_200_000),
    agent_id=st.sampled_from([None, "a1", "a2"]),
)


@FUZZ
@given(events=st.lists(contact_events, max_size=40), repeat=st.booleans())
def test_any_event_sequence_keeps_the_state_sane(events: list[ContactEvent], repeat: bool) -> None:
    state = PartitionState(0)
    for event in events + (events if repeat else []):
        kpi.apply_contact(state, event, KpiConfig())
    for bucket in (*state.minutes.values(), *state.totals.values()):
        assert all(value >= 0 for name, value in bucket.items() if name != "talk_ms"), bucket
    kpi.evict(state, KpiConfig())
    restored = loads(dumps(state))
    assert restored.totals == state.totals and restored.progress == state.progress
    if events:  # replaying everything once more changes nothing (every event id was seen)
        before = dataclasses.replace(state).totals.copy()
        for event in events:
            kpi.apply_contact(state, event, KpiConfig())
        assert state.totals == before
