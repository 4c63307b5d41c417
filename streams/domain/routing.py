"""Routing policy (DESIGN.md section 4): where a newly arrived contact should wait, and why.

Pure and deterministic: ``decide(request, queues, params)`` reads only its inputs (the
decision time is the arrival's event time), so a decision replays identically.

- Candidates are queues of the contact's channel AND skill: its own queue (home first,
  always evaluated and recorded, "no state" when the caller has none) and the same or a
  configured equivalent queue (``equivalent_queues``) in other regions, by region code.
  Eligible: state not older than ``stale_after_ms``, at least one agent logged in, and
  an agent speaking the contact's language.
- EWT per candidate: POSITION (contacts ahead beyond the ready agents, thinned by the
  recent abandonment share, times AHT over the agents logged in; a ready agent or a
  free chat slot means no wait) when the queue has live AHT and at least
  ``min_live_agents`` agents; else ERLANG_A (M/M/n+M mean wait for the recent arrival
  rate, the channel's default AHT and ``patience_s``); else NONE.
- In order: e-mail stays home (EMAIL_DEFERRED); no home state: home (NO_STATE); stale
  home state: home (STALE_STATE); nobody logged in at home (NO_AGENTS_HOME) or nobody
  there speaking the language (LANGUAGE_ONLY_ELSEWHERE): the eligible candidate with
  the lowest EWT, else home (NO_AGENTS_LOGGED_IN); every eligible EWT above
  ``callback_factor`` x the channel's SL threshold: home, CALLBACK_OFFERED; home EWT
  above the threshold and a candidate with headroom (``_has_headroom``) lower by at
  least ``overflow_margin_s``: OVERFLOW_EWT; else HOME. A contact leaves home by no
  other rule.
- Ties go to home, then to the lower region code and queue name.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from streams.domain.erlang import erlang_a
from streams.domain.events import Channel
from streams.domain.kpi import DEFAULT_SL_THRESHOLD_MS


class Reason(StrEnum):
    HOME = "HOME"
    OVERFLOW_EWT = "OVERFLOW_EWT"
    LANGUAGE_ONLY_ELSEWHERE = "LANGUAGE_ONLY_ELSEWHERE"
    NO_AGENTS_LOGGED_IN = "NO_AGENTS_LOGGED_IN"
    CALLBACK_OFFERED = "CALLBACK_OFFERED"
    EMAIL_DEFERRED = "EMAIL_DEFERRED"
    STALE_STATE = "STALE_STATE"
    NO_AGENTS_HOME = "NO_AGENTS_HOME"
    NO_STATE = "NO_STATE"


class EwtMethod(StrEnum):
    POSITION = "POSITION"
    ERLANG_A = "ERLANG_A"
    NONE = "NONE"


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """What routing knows of one queue (a cc.queue.state record)."""

    region: str
    queue: str
    channel: Channel
    languages: frozenset[str]
    contacts_in_queue: int
    agents_logged_in: int
    agents_ready: int
    free_chat_slots: int
    aht_seconds: float | None
    arrival_rate_per_s: float | None
    abandon_rate_per_s: float | None
    as_of_ms: int


@dataclass(frozen=True, slots=True)
class RoutingRequest:
    contact_id: str
    event_id: str
    region: str
    queue: str
    channel: Channel
    language: str
    priority: int
    event_time_ms: int


@dataclass(frozen=True, slots=True)
class Candidate:
    region: str
    queue: str
    ewt_seconds: float
    method: EwtMethod
    eligible: bool
    note: str | None = None


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    contact_id: str
    event_id: str
    region: str
    target_region: str
    target_queue: str
    language: str
    channel: Channel
    priority: int
    ewt_seconds: float
    ewt_method: EwtMethod
    reason: Reason
    candidates: tuple[Candidate, ...]
    decided_at_ms: int
    policy_version: str


_DEFAULT_AHT_S = {Channel.VOICE: 140.0, Channel.CHAT: 300.0, Channel.MESSENGER: 420.0, Channel.EMAIL: 600.0}


@dataclass(frozen=True)
class RoutingParams:
    version: str = "ewt-overflow/2"
    # queue -> queues that may serve its contacts too (a skill declared equivalent); the
    # contact's own queue is always a candidate, unrelated queues never are
    equivalent_queues: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    overflow_margin_s: float = 15.0
    # overflow only into a queue that keeps headroom for its own customers: spare agents (ready
    # beyond its waiting contacts) of at least this many, and an EWT under this share of the threshold
    overflow_min_spare_agents: int = 2
    overflow_max_ewt_share: float = 0.25
    stale_after_ms: int = 300_000
    callback_factor: float = 4.0
    min_live_agents: int = 3
    patience_s: float = 180.0
    thresholds_ms: Mapping[Channel, int] = field(default_factory=lambda: dict(DEFAULT_SL_THRESHOLD_MS))
    default_aht_s: Mapping[Channel, float] = field(default_factory=lambda: dict(_DEFAULT_AHT_S))
    priority_step_s: float = 60.0  # priority rises by one per minute waited, up to 9
    max_candidates: int = 8  # recorded in the decision: home, the target, then the best others


def priority_for_age(base: int, age_s: float, params: RoutingParams) -> int:
    """The priority a contact has after waiting ``age_s`` (the ACD re-reads it as the contact ages)."""
    return min(9, base + int(max(0.0, age_s) // params.priority_step_s))


def estimate_wait(queue: QueueSnapshot, params: RoutingParams) -> tuple[float, EwtMethod]:
    n = queue.agents_logged_in
    if n <= 0:
        return 0.0, EwtMethod.NONE
    chat = queue.channel in (Channel.CHAT, Channel.MESSENGER)
    if (
        chat and queue.free_chat_slots > queue.contacts_in_queue
    ) or queue.agents_ready > queue.contacts_in_queue:
        return 0.0, EwtMethod.POSITION
    if queue.aht_seconds is not None and n >= params.min_live_agents:
        ahead = max(0, queue.contacts_in_queue - queue.agents_ready)
        arrivals, abandons = queue.arrival_rate_per_s, queue.abandon_rate_per_s
        staying = 1.0 - min(0.9, abandons / arrivals) if arrivals and abandons is not None else 1.0
        return (ahead * staying + 1) * queue.aht_seconds / n, EwtMethod.POSITION
    if queue.arrival_rate_per_s:
        aht = queue.aht_seconds or params.default_aht_s[queue.channel]
        model = erlang_a(n, queue.arrival_rate_per_s, aht, params.patience_s)
        waited = model.p_wait and model.mean_wait / model.p_wait  # mean wait of those who wait
        return waited if math.isfinite(waited) else 0.0, EwtMethod.ERLANG_A
    return 0.0, EwtMethod.NONE


def _note(request: RoutingRequest, queue: QueueSnapshot, params: RoutingParams) -> str | None:
    """Why the queue cannot take the contact, or None when it is eligible."""
    if request.event_time_ms - queue.as_of_ms > params.stale_after_ms:
        return f"state {(request.event_time_ms - queue.as_of_ms) / 1000:.0f} s old"
    if queue.agents_logged_in <= 0:
        return "no agent logged in"
    if request.language not in queue.languages:
        return f"no agent speaks {request.language}"
    return None


def state_age_note(request: RoutingRequest, queue: QueueSnapshot) -> str | None:
    """The age of a queue's state at the decision (remote queues: the latest record at or before t)."""
    age_ms = request.event_time_ms - queue.as_of_ms
    return f"as of t-{age_ms / 1000:.3f} s" if age_ms > 0 else None


Estimates = Mapping[tuple[str, str], tuple[float, EwtMethod]]
_Row = tuple[tuple[str, str], float, EwtMethod, str | None]  # queue key, EWT, method, why not eligible


def estimate_all(
    queues: Mapping[tuple[str, str], QueueSnapshot], params: RoutingParams
) -> dict[tuple[str, str], tuple[float, EwtMethod]]:
    """``estimate_wait`` of every queue: a pure function of the snapshots, so a caller holding a
    table may compute it once per table update and pass it to ``decide``."""
    return {key: estimate_wait(q, params) for key, q in queues.items()}


def skill_queues(request: RoutingRequest, params: RoutingParams) -> frozenset[str]:
    """The queues that may serve the contact: its own (its skill) and those configured equivalent."""
    return frozenset({request.queue, *params.equivalent_queues.get(request.queue, ())})


def decide(
    request: RoutingRequest,
    queues: Mapping[tuple[str, str], QueueSnapshot],
    params: RoutingParams,
    estimates: Estimates | None = None,
    notes: Mapping[tuple[str, str], str] | None = None,
) -> RoutingDecision:
    """``queues`` may hold any queue: only those of the contact's channel and skill (or a configured
    equivalent) are candidates. ``notes`` adds a caller's remark to a candidate (e.g. that its
    region's state was not current when the decision could wait no longer)."""
    home_key = (request.region, request.queue)
    names = skill_queues(request, params)
    rows: list[_Row] = []  # every candidate queue, home first
    for key in sorted(queues, key=lambda k: (k != home_key, k)):
        q = queues[key]
        if q.channel is request.channel and q.queue in names:
            ewt, method = (
                estimates[key] if estimates is not None and key in estimates else estimate_wait(q, params)
            )
            rows.append((key, ewt, method, _note(request, q, params)))
    home = rows[0] if rows and rows[0][0] == home_key else None
    if home is None:  # evaluated and recorded even without state: a decision says what it lacked
        home = (home_key, 0.0, EwtMethod.NONE, "no state")
        rows.insert(0, home)
    eligible = [r for r in rows if r[3] is None]
    others = [r for r in eligible if r is not home]
    threshold_s = params.thresholds_ms[request.channel] / 1000
    extra = notes or {}

    def age(key: tuple[str, str]) -> str | None:  # only the shortlisted candidates' notes say it
        return state_age_note(request, queues[key]) if key in queues else None

    def result(target: _Row, reason: Reason) -> RoutingDecision:
        region, queue = target[0]
        ewt, method = (0.0, EwtMethod.NONE) if target[2] is EwtMethod.NONE else (target[1], target[2])
        rest = heapq.nsmallest(
            params.max_candidates - (1 if target is home else 2),
            (r for r in rows if r is not home and r is not target),
            key=lambda r: (r[3] is not None, r[1], r[0]),
        )
        shortlist = [home] + ([] if target is home else [target]) + rest
        candidates = tuple(
            Candidate(
                k[0],
                k[1],
                0.0 if m is EwtMethod.NONE else e,
                m,
                n is None,
                _joined(n, age(k), extra.get(k)),
            )
            for k, e, m, n in shortlist
        )
        return RoutingDecision(
            request.contact_id, request.event_id, request.region, region, queue, request.language,
            request.channel, priority_for_age(request.priority, 0.0, params), ewt, method, reason,
            candidates, request.event_time_ms, params.version,
        )  # fmt: skip

    if request.channel is Channel.EMAIL:
        return result(home, Reason.EMAIL_DEFERRED)
    if home[3] == "no state":  # never send a contact away on ignorance of its home queue
        return result(home, Reason.NO_STATE)
    if home[3] is not None and home[3].startswith("state"):
        return result(home, Reason.STALE_STATE)
    if home[3] is not None:  # nobody logged in at home, or nobody speaking the language
        best = min(others, key=lambda r: (r[1], r[0]), default=None)
        if best is None:
            return result(home, Reason.NO_AGENTS_LOGGED_IN)
        unstaffed = home[3] == "no agent logged in"
        return result(best, Reason.NO_AGENTS_HOME if unstaffed else Reason.LANGUAGE_ONLY_ELSEWHERE)
    if all(r[2] is not EwtMethod.NONE and r[1] > params.callback_factor * threshold_s for r in eligible):
        return result(home, Reason.CALLBACK_OFFERED)
    if home[2] is not EwtMethod.NONE and home[1] > threshold_s:
        spare = [r for r in others if _has_headroom(queues[r[0]], r[1], params, threshold_s)]
        target = min(spare, key=lambda r: (r[1], r[0]), default=None)
        if target is not None and home[1] - target[1] >= params.overflow_margin_s:
            return result(target, Reason.OVERFLOW_EWT)
    return result(home, Reason.HOME)


def _joined(*notes: str | None) -> str | None:
    return "; ".join(n for n in notes if n) or None


def _has_headroom(
    queue: QueueSnapshot, ewt_seconds: float, params: RoutingParams, threshold_s: float
) -> bool:
    spare = queue.agents_ready - queue.contacts_in_queue
    if queue.channel in (Channel.CHAT, Channel.MESSENGER):
        spare = max(spare, queue.free_chat_slots - queue.contacts_in_queue)
    return (
        spare >= params.overflow_min_spare_agents
        and ewt_seconds <= params.overflow_max_ewt_share * threshold_s
    )
