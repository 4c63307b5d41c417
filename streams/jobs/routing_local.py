"""A partition's own queues as of an event time: what routing and cc.queue.state read locally.

The worker consumes a partition's contact and agent topics in an arbitrary interleaving,
so "the state now" depends on processing speed. Everything here is a function of
positions in the streams instead:

- what comes from the contact stream (contacts waiting, recent rates, the chats each
  agent holds) is *captured* at a position of that stream: the ARRIVED event for a
  decision, the first event at or past an event-time boundary for a queue-state record;
- agent states come from each agent's short history of views by event time
  (``agent_history``), read *as of* the event time t: the latest view with time <= t, so
  agent events after t that are already applied do not leak in. The caller waits until
  the agent stream has passed t (streams/jobs/router.py).

Rates use only contact counters of the region x channel minute buckets in the windows
ending with the minute of the contact watermark at the capture (streams/jobs/recent_rates.py).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from streams.domain.events import AgentEvent
from streams.domain.kpi import MINUTE_MS
from streams.jobs.recent_rates import recent_rates
from streams.jobs.state import AgentView, PartitionState, agent_view

HISTORY_MS = 30 * MINUTE_MS  # agent views kept behind the slower of the contact and agent streams
_ACTIVE = frozenset({"READY", "ON_CONTACT", "ACW", "NOT_READY", "LOGGED_IN"})
_CHAT = ("CHAT", "MESSENGER")

Capture = dict[str, Any]  # JSON-able: it is checkpointed with the pending item that holds it


def _times(state: PartitionState, aid: str, history: list[AgentView]) -> list[int]:
    """The event times of an agent's history (``state.agent_times``: kept with it, searched by
    ``bisect`` without a key function); rebuilt if a caller replaced the history."""
    times = state.agent_times.get(aid)
    if times is None or len(times) != len(history):
        times = state.agent_times[aid] = [v.event_time_ms for v in history]
    return times


def record_agent(state: PartitionState, event: AgentEvent) -> None:
    """Add the agent event to its agent's history in event-time order. Events at the same
    millisecond are applied in stream order, so the later one is the state at that time
    (LOGGED_IN then READY at a shift start); the view of a millisecond keeps the ids of the
    events applied at it, so a duplicate of any of them (READY again after READY then
    ON_CONTACT) changes nothing, as in the KPI view (streams/jobs/kpi_apply.py)."""
    aid, t = event.agent_id, event.event_time_ms
    history = state.agent_history.setdefault(aid, [])
    times = _times(state, aid, history)
    if history and times[-1] >= t:
        index = bisect_right(times, t)
        same_ms = history[index - 1] if index and times[index - 1] == t else None
    else:
        index, same_ms = len(history), None
    view = agent_view(event, same_ms)
    if view is None:
        return  # a duplicate of an event of that millisecond
    if same_ms is not None:
        history[index - 1] = view
    else:
        history.insert(index, view)
        times.insert(index, t)


def prune_history(state: PartitionState, history_ms: int = HISTORY_MS) -> None:
    """Keep, per agent, the views after the floor and the last one at or before it; forget agents
    the KPI state evicted (logged out for the contact horizon). The floor is ``history_ms`` behind
    the slower stream and every pending item, so a decision waiting (for other regions, in a
    backlog) still reads its own time, however far the streams moved on meanwhile."""
    pending = [p["request"][-1] for p in state.pending_arrivals] + [p["t"] for p in state.pending_boundaries]
    reached = min(state.watermarks.get("contact", 0), state.watermarks.get("agent", 0), *pending)
    floor = reached - history_ms
    for aid in list(state.agent_history):
        history = state.agent_history[aid]
        if aid not in state.agents:
            del state.agent_history[aid]
            state.agent_times.pop(aid, None)
            continue
        times = _times(state, aid, history)
        keep_from = bisect_right(times, floor) - 1
        if keep_from > 0:
            del history[:keep_from], times[:keep_from]


def agents_as_of(state: PartitionState, region: str, t: int) -> Iterator[tuple[str, AgentView]]:
    """Each agent of ``region`` with its latest view at or before ``t`` (agents unseen by then: none)."""
    for aid, history in state.agent_history.items():
        if history[-1].region != region:
            continue
        if history[-1].event_time_ms <= t:
            yield aid, history[-1]
            continue
        index = bisect_right(_times(state, aid, history), t)
        if index:
            yield aid, history[index - 1]


def agents_by_region(state: PartitionState, t: int) -> dict[str, list[tuple[str, AgentView]]]:
    """``agents_as_of`` for every region of the partition in one pass over the agent histories."""
    found: dict[str, list[tuple[str, AgentView]]] = {}
    for aid, history in state.agent_history.items():
        view = history[-1]
        if view.event_time_ms > t:
            index = bisect_right(_times(state, aid, history), t)
            if not index:
                continue
            view = history[index - 1]
        found.setdefault(history[-1].region, []).append((aid, view))
    return found


def capture(state: PartitionState, keys: list[str]) -> Capture:
    """What queue records for ``keys`` ("region|queue") need from the contact stream, now."""
    wanted = set(keys)
    waiting: dict[str, list[int]] = {}
    for region, _channel, queue, queued_at in state.waiting.values():
        key = f"{region}|{queue}"
        if key in wanted:
            entry = waiting.setdefault(key, [0, queued_at])
            entry[0] += 1
            entry[1] = min(entry[1], queued_at)
    queues = {k: list(state.queues[k]) for k in keys if k in state.queues}
    series = {(k.split("|", 1)[0], channel) for k, (channel, _) in queues.items()}
    # every agent holding a contact: which of them belong to the region is known only from the
    # agent stream, which may not have reached this point yet
    loads = {aid: n for aid, n in state.agent_load.items() if n > 0}
    return {
        "queues": queues,
        "waiting": waiting,
        "rates": {f"{r}|{c}": recent_rates(state, r, c) for r, c in sorted(series)},
        "loads": loads,
    }


_TALLIED = {"READY": 1, "ON_CONTACT": 2, "ACW": 3, "NOT_READY": 4}  # tally index of the counted states
Tally = list[Any]  # [logged in, READY, ON_CONTACT, ACW, NOT_READY, free chat slots, languages (set)]


def skill_tallies(
    region_agents: Iterable[tuple[str, AgentView]], loads: dict[str, int], only: str | None = None
) -> dict[str, Tally]:
    """Per skill (queue name; ``only``: that one), what a queue record counts of the agents having
    it: logged in, by state, free chat slots (the concurrency of READY / ON_CONTACT agents minus
    the contacts they hold), languages of those logged in. One pass over the region's agents for
    all its queues (a boundary), not one per queue."""
    tallies: dict[str, Tally] = {}
    for aid, v in region_agents:
        if only is None:
            skills: Iterable[str] = set(v.skills)
        elif only in v.skills:
            skills = (only,)
        else:
            continue
        active, index = v.state in _ACTIVE, _TALLIED.get(v.state)
        slots = max(0, v.chat_concurrency - loads.get(aid, 0)) if index == 1 or index == 2 else 0
        for skill in skills:
            tally = tallies.get(skill)
            if tally is None:
                tally = tallies[skill] = [0, 0, 0, 0, 0, 0, set()]
            if active:
                tally[0] += 1
                tally[6].update(v.languages)
            if index is not None:
                tally[index] += 1
            tally[5] += slots
    return tallies


def queue_record(
    state: PartitionState, captured: Capture, key: str, t: int,
    region_agents: list[tuple[str, AgentView]] | None = None, tallies: dict[str, Tally] | None = None,
) -> dict[str, Any] | None:  # fmt: skip
    """The cc.queue.state record of ``key`` as of ``t``: contacts from the capture, agents as of t
    (``tallies``: the region's ``skill_tallies``, else of ``region_agents``: the region's, from
    ``agents_by_region``; else read here). None when the capture does not know the queue."""
    if key not in captured["queues"]:
        return None
    region, queue = key.split("|", 1)
    channel, language = captured["queues"][key]
    if tallies is None:
        agents = region_agents if region_agents is not None else agents_as_of(state, region, t)
        tallies = skill_tallies(agents, captured["loads"], queue)
    logged_in, ready, on_contact, acw, not_ready, slots, languages = tallies.get(queue) or _NO_AGENTS
    count, oldest = captured["waiting"].get(key, (0, t))
    aht, arrivals, abandons = captured["rates"].get(f"{region}|{channel}", (None, None, None))
    return {
        "region": region, "queue": queue, "channel": channel, "language": language,
        "contacts_in_queue": count, "oldest_contact_age_seconds": max(0, t - oldest) / 1000 if count else 0.0,
        "agents_logged_in": logged_in,
        "agents_ready": ready, "agents_on_contact": on_contact,
        "agents_acw": acw, "agents_not_ready": not_ready,
        "free_chat_slots": slots if channel in _CHAT else 0,
        "aht_seconds": aht, "arrival_rate_per_s": arrivals, "abandon_rate_per_s": abandons,
        "languages": sorted(languages),
        "as_of_ms": t,
    }  # fmt: skip


_NO_AGENTS: Tally = [0, 0, 0, 0, 0, 0, ()]


def region_has_agents(state: PartitionState, region: str, t: int) -> bool:
    """Whether any agent of the region was seen by ``t`` (else the home queue has no state yet)."""
    return next(agents_as_of(state, region, t), None) is not None


# -- cc.queue.state at event-time boundaries -----------------------------------------------

DECIDED_HORIZON_MS = 26 * 3_600_000  # a re-delivered ARRIVED is recognised this long (e-mail SLA + 2 h)


MAX_BOUNDARIES_PER_GAP = 120  # a quiet hour (at 30 s) gets every boundary; longer gaps their last hour


def capture_boundary(state: PartitionState, t: int, every_ms: int, now: float) -> None:
    """When event time ``t`` passes boundaries not captured yet (multiples of ``every_ms``), capture
    every queue of the partition for a record as of each. Called before a contact event at t is
    applied (the capture sits at the first contact event at or past the boundary), or with the
    agent watermark once the contact partition is read to its end (the contact stream has nothing
    before t left: a quiet partition still publishes its progress). A gap gets all its boundaries,
    so both paths capture the same set."""
    boundary = t - t % every_ms
    if boundary <= state.boundary_ms:
        return
    first = boundary
    if state.boundary_ms:
        first = max(state.boundary_ms + every_ms, boundary - (MAX_BOUNDARIES_PER_GAP - 1) * every_ms)
    captured = capture(state, sorted(state.queues))
    state.boundary_ms = boundary
    for b in range(first, boundary + 1, every_ms):
        state.pending_boundaries.append({"t": b, "capture": captured, "since": now})


def release_boundaries(
    state: PartitionState, agent_ready: Callable[[int, float], bool], now: float, max_wait_s: float
) -> list[list[dict[str, Any]]]:
    """The queue-state records of each captured boundary whose agent states are in, in order:
    per region, the records of the queues whose content changed since the region's last published
    one (``changed_records``). Agents as of the boundary are read in one pass per boundary."""
    released: list[list[dict[str, Any]]] = []
    pending = state.pending_boundaries
    done = 0
    for item in pending:
        waited = now - item.setdefault("since", now)  # restored from a checkpoint: waits anew
        if not agent_ready(item["t"], waited) and waited < max_wait_s:
            break
        t, captured = item["t"], item["capture"]
        tallies = {
            region: skill_tallies(agents, captured["loads"])
            for region, agents in agents_by_region(state, t).items()
        }
        records = [
            queue_record(state, captured, key, t, tallies=tallies.get(key.split("|", 1)[0], {}))
            for key in sorted(captured["queues"])
        ]
        released.append(changed_records(state, [r for r in records if r is not None]))
        done += 1
    del pending[:done]
    return released


def _content(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "as_of_ms"}


def changed_records(state: PartitionState, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of one boundary's records, those whose content (all but ``as_of_ms``) differs from their
    queue's last published record, and per region at least its first record: a region publishes
    something at every boundary, so readers see its progress (``GlobalQueueTable``), and a queue
    without a record at a boundary its region completed is unchanged since its latest record.
    What was published is remembered in memory only (``published``): a restored or reassigned
    partition publishes every queue at its first boundary."""
    kept: list[dict[str, Any]] = []
    regions: dict[str, dict[str, Any]] = {}  # region -> its first record of the boundary
    for record in records:
        region = record["region"]
        regions.setdefault(region, record)
        key, content = f"{region}|{record['queue']}", _content(record)
        if state.published.get(key) != content:
            state.published[key] = content
            kept.append(record)
    with_records = {r["region"] for r in kept}
    kept += [first for region, first in regions.items() if region not in with_records]
    return sorted(kept, key=lambda r: (r["region"], r["queue"]))


def evict_routing(state: PartitionState) -> None:
    """Bound what routing keeps: agent histories (``prune_history``) and decided contacts."""
    prune_history(state)
    floor = state.watermarks.get("contact", 0) - DECIDED_HORIZON_MS
    for cid in [c for c, t in state.decided.items() if t < floor]:
        del state.decided[cid]
