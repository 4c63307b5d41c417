"""Applying decoded events to a partition's KPI state, and reading windows out of it.

Pure over ``PartitionState`` (no Kafka, no clock): the interval rule comes from
``streams.domain.intervals.step``; this module adds what a stream needs around it:
the allowed lateness (a delta for a minute older than watermark - lateness is not
applied; history still has the event; an event whose own minute is that old is counted
as late, duplicates included), minute buckets and
local-day accumulators, survey de-duplication, waiting contacts, agent states, and
eviction so that memory is bounded by regions x channels x horizon, not by events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from streams.domain.events import AgentEvent, AgentState, ContactEvent, ContactEventType, SurveyEvent
from streams.domain.intervals import ContactProgress, step, survey_delta
from streams.domain.kpi import MINUTE_MS, initialize
from streams.domain.regions import DAY_MS, local_day_start
from streams.jobs import recent_rates
from streams.jobs.state import BucketKey, PartitionState, SeriesKey, agent_view

_T = ContactEventType
_LEAVES_QUEUE = frozenset({_T.ANSWERED, _T.ABANDONED, _T.ENDED, _T.ACW_ENDED})
_LOAD_CHANGE = {_T.ANSWERED: 1, _T.ENDED: -1}  # contacts an agent holds (chat concurrency)
# agent time by state, for occupancy = (on contact + ACW) / (on contact + ACW + ready)
AGENT_TIME = {"READY": "ready_ms", "ON_CONTACT": "on_contact_ms", "ACW": "acw_ms"}


@dataclass(frozen=True)
class KpiConfig:
    allowed_lateness_ms: int = 600_000  # DESIGN.md: 10 min
    minute_horizon_ms: int = 70 * MINUTE_MS  # rolling 60 min + lateness
    contact_horizon_ms: int = 26 * 3_600_000  # an open contact (e-mail: 24 h SLA) is dropped after this


def _accumulate(table: dict[BucketKey, dict[str, int]] | dict[SeriesKey, dict[str, int]], key, delta) -> None:  # type: ignore[no-untyped-def]
    bucket = table.get(key)
    if bucket is None:
        bucket = table[key] = initialize()
    for name, value in delta.items():
        bucket[name] += value


def _apply_delta(state: PartitionState, stream: str, region: str, channel: str, minute: int,
                 delta: Mapping[str, int], config: KpiConfig) -> bool:  # fmt: skip
    """Add a delta unless its minute closed longer than the allowed lateness ago on this stream."""
    if minute + MINUTE_MS <= state.watermarks[stream] - config.allowed_lateness_ms:
        return False
    key = (region, channel, minute)
    _accumulate(state.minutes, key, delta)
    recent_rates.add_delta(state, region, channel, minute, delta)
    _accumulate(state.days, (region, channel, local_day_start(region, minute)), delta)
    _accumulate(state.totals, (region, channel), delta)
    state.dirty_minutes.add(key)
    state.dirty_series.add((region, channel))
    return True


def _is_late(state: PartitionState, stream: str, t: int, config: KpiConfig) -> bool:
    """Update the stream's watermark with ``t``; True when t's minute closed more than the allowed
    lateness before it. A function of the partition's input order only: checked before
    de-duplication, because whether a very late duplicate is still recognised depends on when
    its contact was evicted (docs/kpi-engine.md, "Late events")."""
    watermark = state.watermarks.get(stream, 0)
    if t > watermark:
        state.watermarks[stream] = t
        return False
    return t - t % MINUTE_MS + MINUTE_MS <= watermark - config.allowed_lateness_ms


def apply_contact(state: PartitionState, event: ContactEvent, config: KpiConfig) -> bool:
    """Apply one contact event; False when its event_id was already applied (a duplicate)."""
    cid, t = event.contact_id, event.event_time_ms
    if _is_late(state, "contact", t, config):
        state.late_events += 1
    before = state.progress.get(cid)
    progress, deltas = step(before, event)
    if progress is before:  # a duplicate event_id
        return False
    state.progress[cid] = progress
    if t > state.last_seen_ms.get(cid, 0):
        state.last_seen_ms[cid] = t
    for (region, channel, minute), delta in deltas:  # a delta for a closed minute reaches history only
        _apply_delta(state, "contact", region, channel.value, minute, delta, config)
    _track_waiting(state, event, progress)
    queue_key = f"{event.region}|{event.queue}"
    if queue_key not in state.queues:
        state.queues[queue_key] = (event.channel.value, event.language)
    if event.agent_id is not None and event.type in _LOAD_CHANGE:
        state.agent_load[event.agent_id] = state.agent_load.get(event.agent_id, 0) + _LOAD_CHANGE[event.type]
    return True


def _track_waiting(state: PartitionState, event: ContactEvent, progress: ContactProgress) -> None:
    cid = event.contact_id
    if progress.answered_at is not None or progress.abandoned_at is not None or event.type in _LEAVES_QUEUE:
        state.waiting.pop(cid, None)
    elif event.type is _T.QUEUED and progress.queued_at is not None:
        state.waiting[cid] = (event.region, event.channel.value, event.queue, progress.queued_at)


def apply_survey(state: PartitionState, event: SurveyEvent, config: KpiConfig) -> None:
    t = event.event_time_ms
    if _is_late(state, "survey", t, config):
        state.late_surveys += 1
    if event.event_id in state.surveys_seen:
        return
    state.surveys_seen[event.event_id] = t
    (region, channel, minute), delta = survey_delta(event)
    _apply_delta(state, "survey", region, channel.value, minute, delta, config)


def apply_agent(state: PartitionState, event: AgentEvent) -> None:
    t = event.event_time_ms
    if t > state.watermarks.get("agent", 0):
        state.watermarks["agent"] = t
    current = state.agents.get(event.agent_id)
    if current is not None and current.event_time_ms > t:
        return  # older: last writer wins
    # the same millisecond as the current view: applied in stream order (a shift start's
    # LOGGED_IN then READY, an answer at once after READY, NOT_READY then LOGGED_OUT), a
    # duplicate not at all; until 2026-12-01 the first of them stuck (logged-out agents
    # stayed NOT_READY and staffed)
    view = agent_view(event, current if current is not None and current.event_time_ms == t else None)
    if view is None:
        return
    if current is not None and current.state in AGENT_TIME:  # the time spent in the state that ends now
        minute = t - t % MINUTE_MS
        bucket = state.agent_minutes.get((event.region, minute))
        if bucket is None:
            bucket = state.agent_minutes[(event.region, minute)] = dict.fromkeys(AGENT_TIME.values(), 0)
        bucket[AGENT_TIME[current.state]] += t - current.event_time_ms
    state.agents[event.agent_id] = view
    state.dirty_series.add((event.region, "AGENTS"))


def _settled(progress: ContactProgress) -> bool:
    """Every fact of the contact has been emitted: handled (and so ended; a contact answered
    without a queue has no offered/answer facts) or abandoned from a queue."""
    return progress.complete


def evict(state: PartitionState, config: KpiConfig) -> int:
    """Drop what can no longer change: minutes past the horizon, days before yesterday, contacts
    settled for longer than the lateness (late duplicates within it stay de-duplicated), open
    contacts silent for the contact horizon. Returns how many entries were dropped."""
    wm, dropped = state.closed_before_ms, 0
    minute_floor = wm - config.minute_horizon_ms
    for key in [k for k in state.minutes if k[2] < minute_floor]:
        del state.minutes[key]
        dropped += 1
    if dropped:
        recent_rates.forget(state)
    for agent_key in [k for k in state.agent_minutes if k[1] < minute_floor]:
        del state.agent_minutes[agent_key]
    day_floor = wm - 2 * DAY_MS
    for key in [k for k in state.days if k[2] < day_floor]:
        del state.days[key]
        dropped += 1
    settled_floor, open_floor = wm - config.allowed_lateness_ms - MINUTE_MS, wm - config.contact_horizon_ms
    for cid, last in list(state.last_seen_ms.items()):
        if last < open_floor or (last < settled_floor and _settled(state.progress[cid])):
            del state.last_seen_ms[cid], state.progress[cid]
            state.waiting.pop(cid, None)
            state.predictions.pop(cid, None)
            dropped += 1
    for sid in [s for s, t in state.surveys_seen.items() if t < settled_floor]:
        del state.surveys_seen[sid]
    for aid in [
        a
        for a, v in state.agents.items()
        if v.state == AgentState.LOGGED_OUT and v.event_time_ms < open_floor
    ]:
        del state.agents[aid]
    return dropped
