"""The stream side of the KPI engine without Kafka: lateness, de-duplication, eviction,
checkpoint round trip, windows and the scrape-time collector."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from prometheus_client import CollectorRegistry

from streams.domain.events import AgentEvent, AgentState, Channel, ContactEvent, ContactEventType, SurveyEvent
from streams.domain.kpi import ServiceLevelVariant
from streams.jobs import kpi_apply as kpi
from streams.jobs.collector import KpiCollector
from streams.jobs.kpi_apply import KpiConfig, local_day_start
from streams.jobs.queues import StaffingConfig, occupancy, queue_states, staffing
from streams.jobs.state import PartitionState, dumps, loads
from streams.jobs.windows import dirty_views, series_views, snapshot_key, snapshot_record, snapshot_version
from streams.wire.codec import Codec

pytestmark = pytest.mark.unit

T0 = 1_795_400_000_000 - 1_795_400_000_000 % 60_000
_T = ContactEventType
CONFIG = KpiConfig()


def contact(cid: str, kind: ContactEventType, t: int, n: int = 0, region: str = "RU-MOW") -> ContactEvent:
    return ContactEvent(
        event_id=f"{cid}-{kind.value}-{n}", contact_id=cid, type=kind, channel=Channel.VOICE, region=region,
        queue="general", language="ru", customer_ref="c" * 32, event_time_ms=t,
    )  # fmt: skip


def answered_contact(state: PartitionState, cid: str, t: int, wait_ms: int = 10_000) -> None:
    for event in (
        contact(cid, _T.QUEUED, t),
        contact(cid, _T.ANSWERED, t + wait_ms),
        contact(cid, _T.ENDED, t + wait_ms + 100_000),
        contact(cid, _T.ACW_ENDED, t + wait_ms + 120_000),
    ):
        kpi.apply_contact(state, event, CONFIG)


def test_a_contact_counts_once_even_when_every_event_is_duplicated() -> None:
    state = PartitionState(0)
    answered_contact(state, "c1", T0)
    answered_contact(state, "c1", T0)  # the same event ids again
    total = state.totals[("RU-MOW", "VOICE")]
    assert (total["offered"], total["answered"], total["handled"]) == (1, 1, 1)
    assert total["talk_ms"] == 100_000 and total["acw_ms"] == 20_000
    assert state.minutes[("RU-MOW", "VOICE", T0)]["offered"] == 1


@pytest.mark.parametrize(
    ("delay_ms", "applied"),
    [(60_000, True), (9 * 60_000, True), (11 * 60_000 - 1, True), (11 * 60_000, False), (60 * 60_000, False)],
)
def test_allowed_lateness_decides_whether_a_late_event_updates_its_bucket(
    delay_ms: int, applied: bool
) -> None:
    state = PartitionState(0)
    kpi.apply_contact(state, contact("early", _T.QUEUED, T0 + delay_ms), CONFIG)  # the watermark moves on
    kpi.apply_contact(state, contact("late", _T.QUEUED, T0), CONFIG)
    offered_at_t0 = state.minutes.get(("RU-MOW", "VOICE", T0), {}).get("offered", 0)
    assert offered_at_t0 == int(applied)
    assert state.late_events == int(not applied)


@pytest.mark.parametrize("evict_between", [False, True])
def test_late_count_is_a_function_of_the_input_not_of_eviction(evict_between: bool) -> None:
    """A very late duplicate counts as late whether or not its contact was evicted at a
    (wall-clock) checkpoint in between: the count used to differ (196 vs 194 on one input)."""
    state = PartitionState(0)
    answered_contact(state, "old", T0)
    kpi.apply_survey(state, SurveyEvent("s-old", "old", "RU-MOW", Channel.VOICE, 5, T0 + 1_000), CONFIG)
    for i in range(1, 40):  # the partition moves 40 minutes on
        answered_contact(state, f"c{i}", T0 + i * 60_000)
        kpi.apply_survey(
            state, SurveyEvent(f"s{i}", f"c{i}", "RU-MOW", Channel.VOICE, 5, T0 + i * 60_000), CONFIG
        )
    if evict_between:
        kpi.evict(state, CONFIG)
        assert "old" not in state.progress and "s-old" not in state.surveys_seen
    before = dict(state.minutes.get(("RU-MOW", "VOICE", T0), {}))
    answered_contact(state, "old", T0)  # four duplicates, 40 minutes late
    kpi.apply_survey(state, SurveyEvent("s-old", "old", "RU-MOW", Channel.VOICE, 5, T0 + 1_000), CONFIG)
    assert (state.late_events, state.late_surveys) == (4, 1)
    assert state.minutes.get(("RU-MOW", "VOICE", T0), {}) == before  # and they change no bucket
    assert state.totals[("RU-MOW", "VOICE")]["handled"] == 40


@pytest.mark.parametrize("order", ["arrived first", "arrived last"])
def test_an_overflowed_contact_counts_in_its_handling_region_whatever_the_partition_saw_first(
    order: str,
) -> None:
    state = PartitionState(0)
    arrived = contact("c1", _T.ARRIVED, T0, region="RU-MOW")  # home region, the same partition
    rest = [
        contact("c1", _T.QUEUED, T0 + 1_000, region="RU-SPE"),
        contact("c1", _T.ANSWERED, T0 + 5_000, region="RU-SPE"),
        contact("c1", _T.ENDED, T0 + 50_000, region="RU-SPE"),
        contact("c1", _T.ACW_ENDED, T0 + 55_000, region="RU-SPE"),
    ]
    for event in [arrived, *rest] if order == "arrived first" else [*rest, arrived]:
        kpi.apply_contact(state, event, CONFIG)
    assert set(state.totals) == {("RU-SPE", "VOICE")}
    total = state.totals[("RU-SPE", "VOICE")]
    assert (total["offered"], total["answered"], total["handled"], total["ended"]) == (1, 1, 1, 1)


def test_surveys_are_deduplicated_and_counted_in_their_own_minute() -> None:
    state = PartitionState(0)
    survey = SurveyEvent("s1", "c1", "RU-MOW", Channel.VOICE, 5, T0 + 61_000)
    kpi.apply_survey(state, survey, CONFIG)
    kpi.apply_survey(state, survey, CONFIG)
    bucket = state.minutes[("RU-MOW", "VOICE", T0 + 60_000)]
    assert (bucket["surveys"], bucket["top_box"], bucket["survey_score_sum"]) == (1, 1, 5)


def test_eviction_bounds_memory_but_keeps_what_can_still_change() -> None:
    state = PartitionState(0)
    for i in range(300):  # five hours, a contact a minute
        answered_contact(state, f"c{i}", T0 + i * 60_000)
        kpi.apply_survey(
            state, SurveyEvent(f"s{i}", f"c{i}", "RU-MOW", Channel.VOICE, 4, T0 + i * 60_000), CONFIG
        )
    kpi.evict(state, CONFIG)
    wm = state.closed_before_ms
    assert min(m for _, _, m in state.minutes) >= wm - CONFIG.minute_horizon_ms
    assert len(state.minutes) <= 75 and len(state.progress) <= 15
    assert state.totals[("RU-MOW", "VOICE")]["handled"] == 300  # cumulative counters survive eviction


def test_read_ahead_surveys_do_not_close_buckets_their_contacts_have_not_reached() -> None:
    state = PartitionState(0)
    for i in range(200):  # surveys for 200 minutes arrive before any contact event
        kpi.apply_survey(
            state, SurveyEvent(f"s{i}", f"c{i}", "RU-MOW", Channel.VOICE, 5, T0 + i * 60_000), CONFIG
        )
    kpi.evict(state, CONFIG)
    assert state.minutes[("RU-MOW", "VOICE", T0)]["surveys"] == 1


def test_checkpoint_round_trip_restores_every_field() -> None:
    state = PartitionState(3, next_offsets={"cc.contact.events": 42})
    answered_contact(state, "c1", T0)
    kpi.apply_contact(state, contact("c2", _T.QUEUED, T0 + 5_000), CONFIG)
    kpi.apply_agent(state, AgentEvent("a1", "ag1", "RU-MOW", AgentState.READY, T0, ("general",), ("ru",), 2))
    restored = loads(dumps(state))
    fields = "partition next_offsets watermarks progress last_seen_ms minutes days totals agents surveys_seen"
    for name in [*fields.split(), "late_events"]:
        assert getattr(restored, name) == getattr(state, name), name
    assert restored.waiting == state.waiting == {"c2": ("RU-MOW", "VOICE", "general", T0 + 5_000)}
    with pytest.raises(ValueError, match="not zlib"):
        loads(b"garbage")


def test_windows_today_and_snapshot_records() -> None:
    state = PartitionState(0, next_offsets={"cc.contact.events": 10, "cc.survey.events": 5})
    answered_contact(state, "c1", T0, wait_ms=50_000)  # beyond the 40 s voice threshold
    answered_contact(state, "c2", T0 + 120_000, wait_ms=1_000)
    views = {v.window: v for v in dirty_views(state) if v.window != "MINUTE"}
    assert views["ROLLING_15M"].counters["answered"] == 2
    assert views["TODAY"].start_ms == local_day_start("RU-MOW", state.watermark_ms)
    record = snapshot_record(views["ROLLING_60M"], snapshot_version(state), 0)
    assert record["service_level"] == 0.5 and record["version"] == 15
    assert record["asa_seconds"] == pytest.approx(25.5)
    assert snapshot_key("RU-MOW", "VOICE", "MINUTE", T0) == f"RU-MOW|VOICE|MINUTE|{T0}"
    assert not state.dirty_minutes and not dirty_views(state)  # marks cleared


def test_local_day_starts_at_local_midnight() -> None:
    # Kamchatka is UTC+12: local midnight is 12:00 UTC the day before
    noon_utc = 1_795_435_200_000  # 2026-11-23 12:00 UTC, a local midnight there
    assert local_day_start("RU-KAM", noon_utc) == noon_utc
    assert local_day_start("RU-KAM", noon_utc - 1) == noon_utc - 86_400_000


def test_collector_exposes_kpis_queues_and_agents_at_scrape_time() -> None:
    state = PartitionState(0)
    answered_contact(state, "c1", T0)
    kpi.apply_contact(state, contact("c2", _T.QUEUED, T0 + 130_000), CONFIG)
    kpi.apply_agent(state, AgentEvent("a1", "ag1", "RU-MOW", AgentState.READY, T0, ("general",), ("ru",), 1))
    registry = CollectorRegistry()
    registry.register(KpiCollector(lambda: [state], threading.Lock()))
    labels = {"region": "RU-MOW", "channel": "VOICE", "window": "ROLLING_15M"}
    assert registry.get_sample_value("ccpulse_service_level_ratio", labels) == 1.0
    assert registry.get_sample_value("ccpulse_aht_seconds", labels) == 120.0
    assert (
        registry.get_sample_value("ccpulse_contacts_offered_total", {"region": "RU-MOW", "channel": "VOICE"})
        == 2
    )
    queue = {"region": "RU-MOW", "channel": "VOICE", "skill": "general"}
    assert registry.get_sample_value("ccpulse_contacts_in_queue", queue) == 1
    assert registry.get_sample_value("ccpulse_agents", {"region": "RU-MOW", "state": "READY"}) == 1
    assert list(series_views(PartitionState(1))) == []


def agent(aid: str, state: AgentState, t: int, concurrency: int = 1, skill: str = "general") -> AgentEvent:
    return AgentEvent(f"{aid}-{state.value}-{t}", aid, "RU-MOW", state, t, (skill,), ("ru",), concurrency)


def test_queue_state_records_agents_slots_and_the_oldest_waiting_contact() -> None:
    state = PartitionState(0)
    kpi.apply_agent(state, agent("a1", AgentState.READY, T0, concurrency=3))
    kpi.apply_agent(state, agent("a2", AgentState.NOT_READY, T0))
    kpi.apply_contact(state, contact("c1", _T.QUEUED, T0 + 1_000), CONFIG)
    kpi.apply_contact(state, contact("c2", _T.QUEUED, T0 + 30_000), CONFIG)
    answered = dataclasses.replace(contact("c1", _T.ANSWERED, T0 + 31_000), agent_id="a1")
    kpi.apply_contact(state, answered, CONFIG)
    (record,) = queue_states(state)
    assert (record["region"], record["queue"], record["channel"]) == ("RU-MOW", "general", "VOICE")
    assert record["contacts_in_queue"] == 1 and record["oldest_contact_age_seconds"] == 1.0
    assert (record["agents_logged_in"], record["agents_ready"], record["agents_not_ready"]) == (2, 1, 1)
    assert record["free_chat_slots"] == 0  # a voice queue
    assert state.agent_load == {"a1": 1}
    Codec.pinned().encode("cc.queue.state", record)  # valid against the contract schema


def test_occupancy_counts_time_in_the_state_that_ended() -> None:
    state = PartitionState(0)
    kpi.apply_agent(state, agent("a1", AgentState.READY, T0))
    kpi.apply_agent(state, agent("a1", AgentState.ON_CONTACT, T0 + 20_000))  # 20 s ready
    kpi.apply_agent(state, agent("a1", AgentState.ACW, T0 + 80_000))  # 60 s on contact
    kpi.apply_agent(state, agent("a1", AgentState.READY, T0 + 100_000))  # 20 s ACW
    kpi.apply_agent(state, agent("a1", AgentState.ACW, T0 + 90_000))  # older: ignored
    state.watermarks["contact"] = T0 + 100_000
    assert occupancy(state, 15 * 60_000) == {"RU-MOW": pytest.approx(80 / 100)}


@pytest.mark.parametrize(
    ("contacts", "agents", "expected_gap_sign"),
    [(60, 1, 1), (60, 40, -1)],  # a contact per 15 s, 130 s AHT
)
def test_staffing_gap_follows_erlang_a(contacts: int, agents: int, expected_gap_sign: int) -> None:
    state = PartitionState(0)
    for i in range(agents):
        kpi.apply_agent(state, agent(f"a{i}", AgentState.READY, T0))
    for i in range(contacts):
        answered_contact(state, f"c{i}", T0 + i * 15_000)
    required, staffed = staffing(state, StaffingConfig())[("RU-MOW", "VOICE")]
    assert staffed == agents
    assert 7 <= required <= 20  # ~7.5 erlangs in the rolling 15 min ending at the watermark minute
    assert (required - staffed > 0) == (expected_gap_sign > 0)


def test_today_restarts_at_local_midnight_and_the_variant_is_selectable() -> None:
    state = PartitionState(0)
    midnight = local_day_start("RU-KAM", T0 + 86_400_000)  # the next local midnight in Kamchatka
    kam = {"region": "RU-KAM"}
    for cid, t in (("before", midnight - 300_000), ("after", midnight + 60_000)):
        for kind, dt in ((_T.QUEUED, 0), (_T.ABANDONED, 30_000)):
            kpi.apply_contact(state, dataclasses.replace(contact(cid, kind, t + dt), **kam), CONFIG)
    today = {v.window: v for v in series_views(state)}["TODAY"]
    assert today.start_ms == midnight and today.counters["offered"] == 1
    registry = CollectorRegistry()
    collector = KpiCollector(lambda: [state], threading.Lock(), variant=ServiceLevelVariant.ABANDONS_POSITIVE)
    registry.register(collector)
    labels = {"region": "RU-KAM", "channel": "VOICE", "window": "ROLLING_15M"}
    assert (
        registry.get_sample_value("ccpulse_service_level_ratio", labels) == 1.0
    )  # abandoned within 40 s: met
