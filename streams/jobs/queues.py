"""Live queue observations (cc.queue.state), occupancy and the Erlang A staffing gap.

Read out of a partition's state at the partition's event time. Recent rates (AHT,
arrivals, abandons) come from the region x channel ROLLING_15M / ROLLING_60M windows,
so every queue of one channel in a region shares them. Agents count for a queue when
the queue is among their skills; chat slots are the concurrency limits of READY and
ON_CONTACT agents minus the contacts they hold (answered, not yet ended).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from streams.domain.erlang import agents_for_service_level_a
from streams.domain.events import Channel
from streams.domain.kpi import DEFAULT_SL_THRESHOLD_MS, MINUTE_MS
from streams.jobs.kpi_apply import AGENT_TIME
from streams.jobs.state import PartitionState
from streams.jobs.windows import series_views

_ACTIVE = frozenset({"READY", "ON_CONTACT", "ACW", "NOT_READY", "LOGGED_IN"})


@dataclass(frozen=True)
class StaffingConfig:
    service_level_target: float = 0.8
    patience_s: float = 180.0  # mean customer patience for Erlang A (DESIGN.md: 1-5 min)
    max_occupancy: float = 0.9


def _rates(state: PartitionState) -> dict[tuple[str, str], dict[str, Any]]:
    """(region, channel) -> arrival and abandon rates per second (15 min) and AHT (60 min)."""
    result: dict[tuple[str, str], dict[str, Any]] = {}
    for view in series_views(state):
        entry = result.setdefault((view.region, view.channel), {})
        c = view.counters
        if view.window == "ROLLING_15M":
            span_s = (view.end_ms - view.start_ms) / 1000
            entry["arrival_rate_per_s"] = (c["offered"] - c["short_offered"]) / span_s
            entry["abandon_rate_per_s"] = (c["abandoned"] - c["short_abandoned"]) / span_s
        elif view.window == "ROLLING_60M" and c["handled"]:
            entry["aht_seconds"] = (c["talk_ms"] + c["hold_ms"] + c["acw_ms"]) / c["handled"] / 1000
    return result


def queue_states(state: PartitionState) -> Iterator[dict[str, Any]]:
    """One QueueState record (schemas/queue_state.avsc) per queue seen on this partition."""
    as_of = state.watermarks.get("contact", 0)
    rates = _rates(state)
    waiting: dict[str, list[int]] = {}
    for region, _channel, queue, queued_at in state.waiting.values():
        waiting.setdefault(f"{region}|{queue}", []).append(queued_at)
    for key, (channel, language) in sorted(state.queues.items()):
        region, queue = key.split("|", 1)
        agents = [a for aid, a in state.agents.items() if a.region == region and queue in a.skills]
        by_state = {
            s: sum(1 for a in agents if a.state == s) for s in ("READY", "ON_CONTACT", "ACW", "NOT_READY")
        }
        slots = sum(
            max(0, a.chat_concurrency - state.agent_load.get(aid, 0))
            for aid, a in state.agents.items()
            if a.region == region and queue in a.skills and a.state in ("READY", "ON_CONTACT")
        )
        queued = waiting.get(key, [])
        rate = rates.get((region, channel), {})
        yield {
            "region": region, "queue": queue, "channel": channel, "language": language,
            "contacts_in_queue": len(queued),
            "oldest_contact_age_seconds": max(0, as_of - min(queued)) / 1000 if queued else 0.0,
            "agents_logged_in": sum(1 for a in agents if a.state in _ACTIVE),
            "agents_ready": by_state["READY"], "agents_on_contact": by_state["ON_CONTACT"],
            "agents_acw": by_state["ACW"], "agents_not_ready": by_state["NOT_READY"],
            "free_chat_slots": slots if channel in ("CHAT", "MESSENGER") else 0,
            "aht_seconds": rate.get("aht_seconds"), "arrival_rate_per_s": rate.get("arrival_rate_per_s"),
            "abandon_rate_per_s": rate.get("abandon_rate_per_s"),
            "languages": sorted({lang for a in agents if a.state in _ACTIVE for lang in a.languages}),
            "as_of_ms": as_of,
        }  # fmt: skip


@lru_cache(maxsize=4096)
def required_agents(load_tenth_erlangs: int, aht_s: int, channel: str, config: StaffingConfig) -> int:
    """Agents Erlang A needs for the target SL at the channel's threshold (memoised on a 0.1 erlang grid)."""
    load = load_tenth_erlangs / 10
    if load <= 0:
        return 0
    if channel == Channel.EMAIL.value:  # a 24 h threshold: enough capacity is enough
        return math.ceil(load / config.max_occupancy)
    threshold_s = DEFAULT_SL_THRESHOLD_MS[Channel(channel)] / 1000
    return agents_for_service_level_a(
        load, float(aht_s), config.patience_s, threshold_s, config.service_level_target, config.max_occupancy
    )


def staffed_agents(state: PartitionState) -> dict[tuple[str, str], int]:
    """(region, channel) -> agents staffed: logged in (any state but LOGGED_OUT) with a skill of
    one of the channel's queues; every region x channel with a known queue, 0 included."""
    skills: dict[tuple[str, str], set[str]] = {}
    for key, (channel, _language) in state.queues.items():
        region, queue = key.split("|", 1)
        skills.setdefault((region, channel), set()).add(queue)
    return {
        (region, channel): sum(
            1
            for a in state.agents.values()
            if a.region == region and a.state in _ACTIVE and names & set(a.skills)
        )
        for (region, channel), names in skills.items()
    }


def staffing(state: PartitionState, config: StaffingConfig) -> dict[tuple[str, str], tuple[int, int]]:
    """(region, channel) -> (agents Erlang A requires now, agents staffed: logged in with its skills)."""
    result = {}
    for (region, channel), rate in _rates(state).items():
        aht, arrivals = rate.get("aht_seconds"), rate.get("arrival_rate_per_s")
        if aht is None or arrivals is None:
            continue
        skills = {
            q
            for k, (ch, _) in state.queues.items()
            for r, q in [k.split("|", 1)]
            if r == region and ch == channel
        }
        staffed = [
            a
            for a in state.agents.values()
            if a.region == region and a.state in _ACTIVE and skills & set(a.skills)
        ]
        concurrency = max(1.0, sum(a.chat_concurrency for a in staffed) / len(staffed)) if staffed else 1.0
        load = arrivals * aht / (concurrency if channel in ("CHAT", "MESSENGER") else 1.0)
        result[(region, channel)] = (
            required_agents(round(load * 10), round(aht), channel, config),
            len(staffed),
        )
    return result


def occupancy(state: PartitionState, window_ms: int) -> dict[str, float]:
    """region -> (on contact + ACW) / (on contact + ACW + ready) over the last ``window_ms`` of agent time."""
    end = state.watermark_ms - state.watermark_ms % MINUTE_MS + MINUTE_MS
    sums: dict[str, dict[str, int]] = {}
    for (region, minute), bucket in state.agent_minutes.items():
        if end - window_ms <= minute < end:
            total = sums.setdefault(region, dict.fromkeys(AGENT_TIME.values(), 0))
            for name, value in bucket.items():
                total[name] += value
    result = {}
    for region, t in sums.items():
        worked = t["on_contact_ms"] + t["acw_ms"]
        if worked + t["ready_ms"]:
            result[region] = worked / (worked + t["ready_ms"])
    return result
