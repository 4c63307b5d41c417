"""The routing policy: one case per reason code, language, night-time regions, ties, stale state,
EWT methods, and replayability."""

from __future__ import annotations

import dataclasses

import pytest

from streams.domain.events import Channel
from streams.domain.routing import (
    EwtMethod,
    QueueSnapshot,
    Reason,
    RoutingParams,
    RoutingRequest,
    decide,
    estimate_wait,
    priority_for_age,
)

pytestmark = pytest.mark.unit
NOW = 1_795_400_000_000
PARAMS = RoutingParams()


def queue(region: str, name: str = "voice", channel: Channel = Channel.VOICE, **kw: object) -> QueueSnapshot:
    base: dict[str, object] = {
        "region": region, "queue": name, "channel": channel, "languages": frozenset({"ru"}),
        "contacts_in_queue": 0, "agents_logged_in": 10, "agents_ready": 2, "free_chat_slots": 0,
        "aht_seconds": 140.0, "arrival_rate_per_s": 0.05, "abandon_rate_per_s": 0.0, "as_of_ms": NOW - 1_000,
    }  # fmt: skip
    return QueueSnapshot(**(base | kw))  # type: ignore[arg-type]


def request(
    region: str = "RU-MOW", name: str = "voice", channel: Channel = Channel.VOICE, language: str = "ru"
):  # type: ignore[no-untyped-def]
    return RoutingRequest("c1", "e1", region, name, channel, language, 2, NOW)


def table(*queues: QueueSnapshot) -> dict[tuple[str, str], QueueSnapshot]:
    return {(q.region, q.queue): q for q in queues}


BUSY = {"contacts_in_queue": 30, "agents_ready": 0}  # EWT (30 + 1) * 140 / 10 = 434 s
MID = {"contacts_in_queue": 5, "agents_ready": 0}  # EWT (5 + 1) * 140 / 10 = 84 s: over 40 s, under 160
CASES = {
    "home has a ready agent": (request(), table(queue("RU-MOW"), queue("RU-SPE")), Reason.HOME, "RU-MOW"),
    "home over target, another region much faster": (
        request(), table(queue("RU-MOW", **BUSY), queue("RU-SPE")), Reason.OVERFLOW_EWT, "RU-SPE",
    ),
    "home over target but the gain is below the margin": (
        request(),
        table(queue("RU-MOW", contacts_in_queue=3, agents_ready=0),
              queue("RU-SPE", contacts_in_queue=3, agents_ready=0, aht_seconds=130.0)),
        Reason.HOME, "RU-MOW",
    ),
    "WeChat in a region without Chinese speakers": (
        request(name="messenger-zh", channel=Channel.MESSENGER, language="zh"),
        table(queue("RU-MOW", "messenger-zh", Channel.MESSENGER),
              queue("RU-PRI", "messenger-zh", Channel.MESSENGER, languages=frozenset({"ru", "zh"}))),
        Reason.LANGUAGE_ONLY_ELSEWHERE, "RU-PRI",
    ),
    "night-time home region with nobody logged in": (
        request(region="RU-KAM"),
        table(queue("RU-KAM", agents_logged_in=0, agents_ready=0), queue("RU-MOW", **BUSY), queue("RU-SPE")),
        Reason.NO_AGENTS_HOME, "RU-SPE",
    ),
    "no agent logged in anywhere": (
        request(), table(queue("RU-MOW", agents_logged_in=0, agents_ready=0),
                         queue("RU-SPE", agents_logged_in=0, agents_ready=0)),
        Reason.NO_AGENTS_LOGGED_IN, "RU-MOW",
    ),
    "every EWT far above target": (
        request(), table(queue("RU-MOW", contacts_in_queue=200, agents_ready=0),
                         queue("RU-SPE", contacts_in_queue=190, agents_ready=0)),
        Reason.CALLBACK_OFFERED, "RU-MOW",
    ),
    "e-mail is deferred at home": (
        request(name="email", channel=Channel.EMAIL),
        table(queue("RU-MOW", "email", Channel.EMAIL, **BUSY), queue("RU-SPE", "email", Channel.EMAIL)),
        Reason.EMAIL_DEFERRED, "RU-MOW",
    ),
    "stale home state": (
        request(), table(queue("RU-MOW", as_of_ms=NOW - 600_000, **BUSY), queue("RU-SPE")),
        Reason.STALE_STATE, "RU-MOW",
    ),
    "tie between two other regions goes to the lower code": (
        request(region="RU-KAM"),
        table(queue("RU-KAM", agents_logged_in=0, agents_ready=0), queue("RU-SPE"), queue("RU-MOW")),
        Reason.NO_AGENTS_HOME, "RU-MOW",
    ),
    "home missing from the state: no decision on ignorance, home": (
        request(region="RU-TOM"), table(queue("RU-MOW")), Reason.NO_STATE, "RU-TOM",
    ),
    "another skill with a ready agent is never a candidate": (
        request(),
        table(queue("RU-MOW", **MID), queue("RU-SPE", "sales"), queue("RU-SPE", "chat", Channel.CHAT)),
        Reason.HOME, "RU-MOW",
    ),
    "home has agents but none speak the language: same skill elsewhere": (
        request(name="support", language="en"),
        table(queue("RU-MOW", "support"), queue("RU-SPE", "support", languages=frozenset({"ru", "en"})),
              queue("RU-NVS", "sales", languages=frozenset({"en"}))),
        Reason.LANGUAGE_ONLY_ELSEWHERE, "RU-SPE",
    ),
}  # fmt: skip


@pytest.mark.parametrize(("req", "queues", "reason", "target"), CASES.values(), ids=CASES.keys())
def test_reason_and_target(req: RoutingRequest, queues: dict, reason: Reason, target: str) -> None:
    decision = decide(req, queues, PARAMS)
    assert (decision.reason, decision.target_region) == (reason, target)
    chosen = queues.get((decision.target_region, decision.target_queue))
    if chosen is not None and reason not in (Reason.NO_AGENTS_LOGGED_IN, Reason.STALE_STATE):
        assert req.language in chosen.languages  # never a queue without the language
        assert chosen.channel is req.channel
    assert decision.candidates[0].region == req.region or (req.region, req.queue) not in queues  # home first
    assert decision.decided_at_ms == req.event_time_ms
    assert decide(req, dict(reversed(list(queues.items()))), PARAMS) == decision  # replayable, order-free


def test_ties_prefer_home() -> None:
    decision = decide(request(), table(queue("RU-SPE"), queue("RU-MOW")), PARAMS)
    assert decision.target_region == "RU-MOW" and decision.reason is Reason.HOME


@pytest.mark.parametrize(
    ("snapshot", "method", "ewt"),
    [
        (queue("A", agents_ready=3), EwtMethod.POSITION, 0.0),
        (queue("A", contacts_in_queue=9, agents_ready=0), EwtMethod.POSITION, 140.0),  # (9 + 1) * 140 / 10
        (queue("A", contacts_in_queue=9, agents_ready=0, abandon_rate_per_s=0.025), EwtMethod.POSITION, 77.0),
        (queue("A", channel=Channel.CHAT, free_chat_slots=4, contacts_in_queue=2, agents_ready=0),
         EwtMethod.POSITION, 0.0),
        (queue("A", agents_logged_in=0, agents_ready=0), EwtMethod.NONE, 0.0),
        (queue("A", agents_logged_in=2, agents_ready=0, aht_seconds=None, arrival_rate_per_s=None),
         EwtMethod.NONE, 0.0),
    ],
)  # fmt: skip
def test_estimate_wait(snapshot: QueueSnapshot, method: EwtMethod, ewt: float) -> None:
    assert estimate_wait(snapshot, PARAMS) == (pytest.approx(ewt), method)


def test_thin_live_data_falls_back_to_erlang_a() -> None:
    thin = queue("A", agents_logged_in=2, agents_ready=0, contacts_in_queue=1, aht_seconds=None,
                  arrival_rate_per_s=0.012)  # fmt: skip
    ewt, method = estimate_wait(thin, PARAMS)
    assert method is EwtMethod.ERLANG_A and 10 < ewt < 400
    busier = dataclasses.replace(thin, arrival_rate_per_s=0.014)
    assert estimate_wait(busier, PARAMS)[0] > ewt  # more load, longer wait


def test_priority_rises_with_age() -> None:
    assert [priority_for_age(2, s, PARAMS) for s in (0, 59, 60, 600)] == [2, 2, 3, 9]


def test_no_overflow_into_a_queue_without_headroom_for_its_own_customers() -> None:
    thin = queue("RU-SPE", agents_ready=1)  # one spare agent only
    decision = decide(request(), table(queue("RU-MOW", **BUSY), thin), PARAMS)
    assert decision.reason is Reason.HOME
    slow = queue("RU-SPE", contacts_in_queue=9, agents_ready=0)  # EWT 140 s: far below home, but over target
    assert decide(request(), table(queue("RU-MOW", **BUSY), slow), PARAMS).reason is Reason.HOME


def test_precomputed_estimates_give_the_same_decision_and_the_shortlist_keeps_home_and_target() -> None:
    from streams.domain.routing import estimate_all

    queues = table(queue("RU-MOW", **BUSY), *(queue(f"RU-{c}A{c}") for c in "BCDEFGHIJKLM"))
    decision = decide(request(), queues, PARAMS)
    assert decide(request(), queues, PARAMS, estimate_all(queues, PARAMS)) == decision
    assert len(decision.candidates) == PARAMS.max_candidates < len(queues)
    assert decision.candidates[0].region == "RU-MOW"
    assert decision.candidates[1].region == decision.target_region != "RU-MOW"


def test_home_is_the_first_candidate_even_without_state() -> None:
    decision = decide(request(region="RU-TOM"), table(queue("RU-MOW"), queue("RU-SPE")), PARAMS)
    home = decision.candidates[0]
    assert (home.region, home.queue, home.eligible, home.note) == ("RU-TOM", "voice", False, "no state")
    assert decision.reason is Reason.NO_STATE


def test_home_stays_first_when_the_shortlist_is_full() -> None:
    queues = table(queue("RU-ZZZ", contacts_in_queue=5, agents_ready=0),
                   *(queue(f"RU-{c}A{c}") for c in "BCDEFGHIJKLM"))  # fmt: skip
    decision = decide(request(region="RU-ZZZ"), queues, PARAMS)
    assert decision.reason is Reason.OVERFLOW_EWT and len(decision.candidates) == PARAMS.max_candidates
    assert decision.candidates[0].region == "RU-ZZZ"  # home first, then the target
    assert decision.candidates[1].region == decision.target_region == "RU-BAB"


def test_an_equivalent_queue_is_a_candidate_only_when_configured() -> None:
    queues = table(queue("RU-MOW", "support", **MID), queue("RU-SPE", "support-2"))
    assert decide(request(name="support"), queues, PARAMS).reason is Reason.HOME
    params = dataclasses.replace(PARAMS, equivalent_queues={"support": ("support-2",)})
    decision = decide(request(name="support"), queues, params)
    assert (decision.reason, decision.target_region, decision.target_queue) == (
        Reason.OVERFLOW_EWT, "RU-SPE", "support-2",
    )  # fmt: skip


def test_remote_state_age_and_caller_notes_are_recorded() -> None:
    queues = table(queue("RU-MOW", **BUSY, as_of_ms=NOW), queue("RU-SPE", as_of_ms=NOW - 12_000))
    decision = decide(request(), queues, PARAMS, notes={("RU-SPE", "voice"): "decided without waiting"})
    remote = decision.candidates[1]
    assert remote.eligible and remote.note == "as of t-12.000 s; decided without waiting"
    assert decision.candidates[0].note is None


def test_wechat_never_goes_to_a_queue_without_chinese_speakers() -> None:
    zh = request(name="messenger-zh", channel=Channel.MESSENGER, language="zh")
    queues = table(
        queue("RU-MOW", "messenger-zh", Channel.MESSENGER, languages=frozenset({"ru"})),
        queue("RU-SPE", "messenger-zh", Channel.MESSENGER, languages=frozenset({"ru"})),
        queue("RU-NVS", "messenger", Channel.MESSENGER, languages=frozenset({"ru", "zh"})),
    )
    decision = decide(zh, queues, PARAMS)
    assert decision.reason is Reason.NO_AGENTS_LOGGED_IN and decision.target_region == "RU-MOW"
