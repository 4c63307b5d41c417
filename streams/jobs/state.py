"""The KPI state of one partition number: plain values, serialisable, with its positions.

The input topics are co-partitioned (same partition count, key = region), so partition
p of cc.contact.events, cc.agent.events and cc.survey.events carries the same regions,
and one worker owns all three (range assignment). Everything derived from them lives
in one ``PartitionState``, including ``next_offsets`` (per topic, the first offset not
yet applied). A minute bucket gets contact and survey counters from two topics, which
is why they must share a state. The state is checkpointed as one record (see
``streams.engine.checkpoints``), so the state and the positions it corresponds to are
always written together: after a crash the worker restores the last checkpoint and
skips every replayed message below ``next_offsets``; nothing is lost or counted twice.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from streams.domain.events import AgentEvent, Channel
from streams.domain.intervals import ContactProgress
from streams.engine.checkpoints import changelog_topic, restore

# 2 added the restore epoch; format 1 loads with epoch 0. Routing's keys (agent_history,
# decided, pending_arrivals, pending_boundaries, boundary_ms) were added within format 2 and
# load empty when absent. 3 added an agent's NOT_READY reason and the ids of the events applied
# at its latest millisecond (a 7th and 8th item of an agent's list, written when there are
# any); formats 1 and 2 load with neither. A worker of an older format refuses a newer
# checkpoint instead of dropping what it cannot read
FORMAT_VERSION = 3
READABLE_FORMATS = (1, 2, FORMAT_VERSION)

BucketKey = tuple[str, str, int]  # region, channel, window start (epoch ms)
SeriesKey = tuple[str, str]  # region, channel


@dataclass
class AgentView:
    """The latest known state of one agent: last writer by event time wins; events of the same
    millisecond apply in stream order (LOGGED_IN then READY at a shift start, READY then
    ON_CONTACT when a waiting contact is answered at once, NOT_READY then LOGGED_OUT), and
    ``ids_at_t`` tells a duplicate of one of them from the next (streams/jobs/kpi_apply.py)."""

    region: str
    state: str
    skills: tuple[str, ...]
    languages: tuple[str, ...]
    chat_concurrency: int
    event_time_ms: int
    reason: str = ""  # NOT_READY only: the agent's reason code (BREAK, LUNCH, OFFLINE, ...); "" if none
    ids_at_t: tuple[str, ...] = ()  # the ids of the events applied at event_time_ms


def agent_view(event: AgentEvent, same_ms: AgentView | None = None) -> AgentView | None:
    """The view an agent event makes. ``same_ms``: the view already held at the event's
    millisecond (the KPI view's current one, or routing's history entry): its ids tell a
    duplicate (None) from the next event of that millisecond, which replaces it and adds its id."""
    ids: tuple[str, ...] = (event.event_id,)
    if same_ms is not None:
        if event.event_id in same_ms.ids_at_t:
            return None
        ids = (*same_ms.ids_at_t, event.event_id)
    return AgentView(
        event.region, event.state.value, event.skills, event.languages, event.chat_concurrency,
        event.event_time_ms, event.reason or "", ids,
    )  # fmt: skip


@dataclass
class PartitionState:
    partition: int
    next_offsets: dict[str, int] = field(default_factory=dict)  # topic -> first offset not applied
    epoch: int = 0  # restore epoch: +1, durably recorded, each time a worker takes the partition
    watermarks: dict[str, int] = field(default_factory=dict)  # stream (contact/survey/agent) -> max time
    progress: dict[str, ContactProgress] = field(default_factory=dict)
    last_seen_ms: dict[str, int] = field(default_factory=dict)  # contact_id -> latest event time
    waiting: dict[str, tuple[str, str, str, int]] = field(default_factory=dict)  # id -> region, ch, queue, t
    surveys_seen: dict[str, int] = field(default_factory=dict)  # survey event_id -> event time
    minutes: dict[BucketKey, dict[str, int]] = field(default_factory=dict)
    days: dict[BucketKey, dict[str, int]] = field(default_factory=dict)  # key: local day start (UTC ms)
    totals: dict[SeriesKey, dict[str, int]] = field(default_factory=dict)  # since the state began
    agents: dict[str, AgentView] = field(default_factory=dict)
    agent_load: dict[str, int] = field(default_factory=dict)  # agent_id -> contacts answered, not ended
    agent_minutes: dict[tuple[str, int], dict[str, int]] = field(default_factory=dict)  # (region, minute)
    queues: dict[str, tuple[str, str]] = field(default_factory=dict)  # "region|queue" -> (channel, language)
    predictions: dict[str, tuple[float, str, int]] = field(default_factory=dict)  # contact -> EWT, method, t
    # routing as of event time (streams/jobs/routing_local.py): each agent's recent views by event
    # time; contacts decided (contact_id -> ARRIVED time, 26 h); decisions and queue-state
    # boundaries captured at their position in the contact stream, waiting for the agent stream
    agent_history: dict[str, list[AgentView]] = field(default_factory=dict)
    decided: dict[str, int] = field(default_factory=dict)
    pending_arrivals: list[dict[str, Any]] = field(default_factory=list)
    pending_boundaries: list[dict[str, Any]] = field(default_factory=list)
    boundary_ms: int = 0  # the latest event-time boundary captured for cc.queue.state
    late_events: int = 0  # contact events whose own minute closed beyond the lateness (duplicates too)
    late_surveys: int = 0
    # not persisted: what changed since the last emission
    dirty_minutes: set[BucketKey] = field(default_factory=set, repr=False)
    dirty_series: set[SeriesKey] = field(default_factory=set, repr=False)
    # "region|queue" -> the content of its last cc.queue.state record (streams/jobs/routing_local.py)
    published: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    # not persisted, derived from the fields above (built here, kept current by the code that
    # changes those fields): indexes of the routing hot paths (docs/kpi-engine.md, "Routing cost")
    pending_ids: dict[str, int] = field(init=False, repr=False, compare=False)  # pending contact_id -> n
    agent_times: dict[str, list[int]] = field(init=False, repr=False, compare=False)  # agent_history times
    # (region, channel) -> [window end, handled, handle ms, offered (15 min), abandoned (15 min)]
    rate_sums: dict[SeriesKey, list[int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.pending_ids = {}
        for item in self.pending_arrivals:
            cid = item["request"][0]
            self.pending_ids[cid] = self.pending_ids.get(cid, 0) + 1
        self.agent_times = {a: [v.event_time_ms for v in h] for a, h in self.agent_history.items()}
        self.rate_sums = {}

    @property
    def watermark_ms(self) -> int:
        """The event time the partition has reached (rolling windows end at its minute)."""
        return max(self.watermarks.values(), default=0)

    @property
    def closed_before_ms(self) -> int:
        """Buckets before this cannot change any more on either KPI stream (contacts, surveys):
        the slower stream decides, so a stream read ahead of the other never closes its buckets."""
        # a stream not seen yet counts as 0: read ahead, surveys would otherwise close the
        # buckets their contacts have not reached (seen on a replay: surveys arrive first)
        return min(self.watermarks.get("contact", 0), self.watermarks.get("survey", 0))


# -- serialisation (JSON + zlib: portable, inspectable, no pickle from a topic) -----------


def _progress_to_list(p: ContactProgress) -> list[Any]:
    return [
        p.region, p.channel.value, sorted(p.seen), p.queued_at, p.answered_at, p.abandoned_at, p.ended_at,
        p.acw_ended_at, list(p.hold_starts), list(p.hold_ends), sorted(p.emitted), p.handled_hold_ms,
        p.located, p.transferred, p.resolution,
    ]  # fmt: skip


def _progress_from_list(v: list[Any]) -> ContactProgress:
    return ContactProgress(
        region=v[0], channel=Channel(v[1]), seen=frozenset(v[2]), queued_at=v[3], answered_at=v[4],
        abandoned_at=v[5], ended_at=v[6], acw_ended_at=v[7], hold_starts=tuple(v[8]),
        hold_ends=tuple(v[9]), emitted=frozenset(v[10]), handled_hold_ms=v[11],
        # format 1 had no located / transferred / resolution: its region was final, its
        # transfers and FLR were already counted per event
        located=v[12] if len(v) > 12 else True, transferred=v[13] if len(v) > 12 else False,
        resolution=v[14] if len(v) > 12 else None,
    )  # fmt: skip


def _keyed(table: dict[Any, dict[str, int]]) -> list[list[Any]]:
    return [[*key, value] for key, value in table.items()]


def _unkeyed(rows: list[list[Any]]) -> dict[Any, dict[str, int]]:
    return {tuple(row[:-1]): row[-1] for row in rows}


def _agent_to_list(v: AgentView) -> list[Any]:
    items = [v.region, v.state, list(v.skills), list(v.languages), v.chat_concurrency, v.event_time_ms]
    if v.ids_at_t:
        return [*items, v.reason, list(v.ids_at_t)]
    return [*items, v.reason] if v.reason else items


def _agent_from_list(v: list[Any]) -> AgentView:
    reason, ids = (v[6] if len(v) > 6 else ""), (tuple(v[7]) if len(v) > 7 else ())
    return AgentView(v[0], v[1], tuple(v[2]), tuple(v[3]), v[4], v[5], reason, ids)


def _without_wall_time(pending: dict[str, Any]) -> dict[str, Any]:
    """A pending item's wall-clock start is process-local: a restored one starts waiting anew."""
    return {k: v for k, v in pending.items() if k != "since"}


def dumps(state: PartitionState) -> bytes:
    document = {
        "format": FORMAT_VERSION,
        "partition": state.partition,
        "next_offsets": state.next_offsets,
        "epoch": state.epoch,
        "watermarks": state.watermarks,
        "progress": {cid: _progress_to_list(p) for cid, p in state.progress.items()},
        "last_seen_ms": state.last_seen_ms,
        "waiting": state.waiting,
        "surveys_seen": state.surveys_seen,
        "minutes": _keyed(state.minutes),
        "days": _keyed(state.days),
        "totals": _keyed(state.totals),
        "agents": {a: _agent_to_list(v) for a, v in state.agents.items()},
        "late_events": state.late_events,
        "late_surveys": state.late_surveys,
        "agent_load": state.agent_load,
        "agent_minutes": _keyed(state.agent_minutes),
        "queues": state.queues,
        "predictions": state.predictions,
        "agent_history": {a: [_agent_to_list(v) for v in h] for a, h in state.agent_history.items()},
        "decided": state.decided,
        "pending_arrivals": [_without_wall_time(p) for p in state.pending_arrivals],
        "pending_boundaries": [_without_wall_time(p) for p in state.pending_boundaries],
        "boundary_ms": state.boundary_ms,
    }
    return zlib.compress(json.dumps(document, separators=(",", ":")).encode(), 1)


def loads(data: bytes) -> PartitionState:
    try:
        document = json.loads(zlib.decompress(data))
    except (zlib.error, ValueError) as exc:
        msg = f"KPI state checkpoint is not zlib-compressed JSON: {exc}"
        raise ValueError(msg) from None
    if document.get("format") not in READABLE_FORMATS:
        msg = f"KPI state checkpoint has format {document.get('format')!r}, readable: {READABLE_FORMATS}"
        raise ValueError(msg)
    return PartitionState(
        partition=document["partition"],
        next_offsets=document["next_offsets"],
        epoch=document.get("epoch", 0),  # format 1: before epochs
        watermarks=document["watermarks"],
        progress={cid: _progress_from_list(v) for cid, v in document["progress"].items()},
        last_seen_ms=document["last_seen_ms"],
        waiting={cid: tuple(v) for cid, v in document["waiting"].items()},
        surveys_seen=document["surveys_seen"],
        minutes=_unkeyed(document["minutes"]),
        days=_unkeyed(document["days"]),
        totals=_unkeyed(document["totals"]),
        agents={a: _agent_from_list(v) for a, v in document["agents"].items()},
        late_events=document["late_events"],
        late_surveys=document["late_surveys"],
        agent_load=document["agent_load"],
        agent_minutes=_unkeyed(document["agent_minutes"]),
        queues={k: (v[0], v[1]) for k, v in document["queues"].items()},
        predictions={k: (v[0], v[1], v[2]) for k, v in document["predictions"].items()},
        agent_history={
            a: [_agent_from_list(v) for v in h] for a, h in document.get("agent_history", {}).items()
        },
        decided=document.get("decided", {}),
        pending_arrivals=document.get("pending_arrivals", []),
        pending_boundaries=document.get("pending_boundaries", []),
        boundary_ms=document.get("boundary_ms", 0),
    )


def restored_states(
    consumer_config: dict[str, Any], app_id: str, numbers: list[int]
) -> dict[int, PartitionState]:
    """The last checkpoint of each partition, decoded (any readable format: streams/jobs/state.py)."""
    restored = {}
    for p, data in restore(consumer_config, app_id, numbers).items():
        state = loads(data)
        if state.partition != p:
            msg = f"checkpoint in {changelog_topic(app_id)}[{p}] is for partition {state.partition}"
            raise RuntimeError(msg)
        restored[p] = state
    return restored
