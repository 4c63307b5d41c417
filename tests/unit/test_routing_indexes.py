"""The routing hot paths' indexes answer exactly what the scans they replaced answered.

Each index (docs/kpi-engine.md, "Routing cost") is held to a naive reference, the code before
it, on random sequences over many seeds: the queue table indexed per queue name with ``int``
time lists (reference: a scan of every queue's history with ``bisect`` over records), the
running rate sums (reference: a sum over the 60 minute buckets at each reading), the per-skill
tallies of a boundary (reference: one filter per queue), and the pending contact ids that
``Router.on_answered`` looks up (reference: ``any`` over the pending arrivals).
"""

from __future__ import annotations

import bisect
import dataclasses
import random
from typing import Any

import pytest

from streams.domain.events import AgentEvent, AgentState, Channel, ContactEvent, ContactEventType
from streams.domain.kpi import MINUTE_MS
from streams.domain.routing import QueueSnapshot, estimate_all
from streams.jobs import kpi_apply as kpi
from streams.jobs.kpi_apply import KpiConfig
from streams.jobs.recent_rates import recent_rates
from streams.jobs.router import GlobalQueueTable, Router
from streams.jobs.routing_local import agents_as_of, capture, queue_record, record_agent, skill_tallies
from streams.jobs.state import PartitionState
from streams.wire.codec import Codec

pytestmark = pytest.mark.unit
T0 = 1_795_400_000_000 - 1_795_400_000_000 % 60_000
SEEDS = range(40)


class NaiveTable:
    """The table before its index (the code of commit acece1c): a scan of every queue's history."""

    def __init__(self, history_ms: int = 3_600_000, max_history_ms: int = 26 * 3_600_000) -> None:
        self._history: dict[tuple[str, str], list[QueueSnapshot]] = {}
        self._progress: dict[str, int] = {}
        self._completed: dict[str, list[int]] = {}
        self._arriving: dict[tuple[str, int], set[str]] = {}
        self.keep_from_ms = 0
        self._history_ms, self._max_history_ms = history_ms, max_history_ms

    def add(self, snapshot: QueueSnapshot, boundary_size: int | None = None) -> None:
        key = (snapshot.region, snapshot.queue)
        self._count(snapshot, boundary_size)
        history = self._history.setdefault(key, [])
        if history and history[-1].as_of_ms >= snapshot.as_of_ms:
            index = bisect.bisect_left(history, snapshot.as_of_ms, key=lambda s: s.as_of_ms)
            if index < len(history) and history[index].as_of_ms == snapshot.as_of_ms:
                history[index] = snapshot
            else:
                history.insert(index, snapshot)
            return
        history.append(snapshot)
        newest = snapshot.as_of_ms
        floor = max(min(newest - self._history_ms, self.keep_from_ms), newest - self._max_history_ms)
        if history[0].as_of_ms < floor:
            del history[: max(0, bisect.bisect_left(history, floor, key=lambda s: s.as_of_ms) - 1)]

    # the boundary bookkeeping is not part of the index: the table's own, unchanged by it
    _count = GlobalQueueTable._count

    def as_of(
        self, t: int, channel: Channel, names: frozenset[str], regions: frozenset[str] | None = None
    ) -> tuple[dict[tuple[str, str], QueueSnapshot], set[str]]:
        found: dict[tuple[str, str], QueueSnapshot] = {}
        for key, history in self._history.items():
            if key[1] not in names or history[-1].channel is not channel:
                continue
            index = bisect.bisect_right(history, t, key=lambda s: s.as_of_ms)
            if not index:
                continue
            snapshot = history[index - 1]
            completed = self._completed.get(key[0], ())
            at = bisect.bisect_right(completed, t)
            if at and completed[at - 1] > snapshot.as_of_ms:
                snapshot = dataclasses.replace(snapshot, as_of_ms=completed[at - 1])
            found[key] = snapshot
        progress = dict(self._progress)
        expected = regions if regions is not None else progress.keys()
        return found, {r for r in expected if progress.get(r, -1) < t}


REGIONS = ("RU-MOW", "RU-SPE", "RU-KGD", "RU-KHA", "RU-PRI")
QUEUES = {"voice": Channel.VOICE, "sales": Channel.VOICE, "chat": Channel.CHAT, "wechat": Channel.MESSENGER}


def random_snapshot(rng: random.Random, region: str, queue: str, as_of: int) -> QueueSnapshot:
    channel = QUEUES[queue] if rng.random() > 0.02 else Channel.EMAIL  # now and then a channel changes
    return QueueSnapshot(
        region, queue, channel, frozenset(rng.sample(["ru", "en", "zh"], rng.randrange(0, 3))),
        rng.randrange(0, 5), rng.randrange(0, 6), rng.randrange(0, 4), rng.randrange(0, 3),
        rng.choice([None, 120.0, 300.5]), rng.choice([None, 0.1, 0.5]), rng.choice([None, 0.0, 0.02]), as_of,
    )  # fmt: skip


@pytest.mark.parametrize("seed", SEEDS)
def test_the_indexed_table_answers_as_the_scan_of_every_history(seed: int) -> None:
    """Boundaries every 30 s with changed queues only (at least one per region), regions that
    fall behind and catch up, records re-published after a "restart", records without the size
    header, keep_from_ms moving, short histories that get pruned; at each step random queries
    (times before, between and after the boundaries, one or two queue names, a channel, with or
    without the expected regions) must give equal snapshots and equal lagging regions, and the
    router's cached EWT estimates must equal fresh ones."""
    rng = random.Random(seed)
    history_ms = rng.choice([120_000, 600_000, 3_600_000])
    indexed, naive = GlobalQueueTable({}, Codec.pinned(), history_ms=history_ms), NaiveTable(history_ms)
    router = Router(indexed, Codec.pinned())
    regions = REGIONS[: rng.randrange(2, len(REGIONS) + 1)]
    boundary = {r: T0 for r in regions}
    published: list[tuple[QueueSnapshot, int | None]] = []
    queries = 0
    for _step in range(rng.randrange(40, 90)):
        region = rng.choice(regions)
        if rng.random() < 0.1 and published:  # a restarted partition publishes some records again
            for snapshot, size in rng.sample(published, min(len(published), rng.randrange(1, 4))):
                indexed.add(snapshot, size)
                naive.add(snapshot, size)
        else:
            boundary[region] += 30_000 * rng.choice([1, 1, 1, 2, 5])
            queues = rng.sample(sorted(QUEUES), rng.randrange(1, len(QUEUES) + 1))
            size = None if rng.random() < 0.05 else len(queues)
            for queue in queues:
                snapshot = random_snapshot(rng, region, queue, boundary[region])
                published.append((snapshot, size))
                indexed.add(snapshot, size)
                naive.add(snapshot, size)
        if rng.random() < 0.2:
            indexed.keep_from_ms = naive.keep_from_ms = T0 + rng.randrange(0, 3_600_000)
        low, high = T0 - 60_000, max(boundary.values()) + 60_000
        for _ in range(rng.randrange(1, 6)):
            t = rng.choice([rng.randrange(low, high), rng.choice(list(boundary.values()))])
            names = frozenset(rng.sample(sorted(QUEUES), rng.choice([1, 1, 2])))
            channel = rng.choice([Channel.VOICE, Channel.CHAT, Channel.MESSENGER, Channel.EMAIL])
            expected = rng.choice([None, frozenset(regions), frozenset(REGIONS)])
            sources: dict[tuple[str, str], QueueSnapshot] = {}
            found = indexed.as_of(t, channel, names, expected, sources)
            assert found == naive.as_of(t, channel, names, expected), (seed, t - T0, sorted(names), channel)
            # the router's estimates, cached per source record, are those of each reading
            assert router._estimates(found[0], sources) == estimate_all(found[0], router.params)
            queries += 1
    assert queries > 40


def test_the_indexed_table_gives_one_reading_per_record_and_boundary() -> None:
    """A queue without a record at its region's later complete boundary is read as of that
    boundary; every decision at that boundary gets the same object (the estimate cache keys on it)."""
    table = GlobalQueueTable({}, Codec.pinned())
    voice = random_snapshot(random.Random(1), "RU-MOW", "voice", T0)
    voice = dataclasses.replace(voice, channel=Channel.VOICE)
    table.add(voice, 2)
    table.add(dataclasses.replace(voice, queue="sales"), 2)
    table.add(dataclasses.replace(voice, queue="sales", as_of_ms=T0 + 30_000), 1)  # voice unchanged
    first = table.as_of(T0 + 31_000, Channel.VOICE, frozenset({"voice"}))[0][("RU-MOW", "voice")]
    again = table.as_of(T0 + 45_000, Channel.VOICE, frozenset({"voice"}))[0][("RU-MOW", "voice")]
    assert first.as_of_ms == T0 + 30_000 and first is again
    assert dataclasses.replace(first, as_of_ms=T0) == voice


# -- running rate sums ---------------------------------------------------------------------


def naive_rates(state: PartitionState, region: str, channel: str) -> list[float | None]:
    """``_rates`` before the running sums (commit acece1c): the window's 60 buckets summed."""
    wm = state.watermarks.get("contact", 0)
    end = wm - wm % MINUTE_MS + MINUTE_MS
    offered = abandoned = handled = handle_ms = 0
    for minute in range(end - 60 * MINUTE_MS, end, MINUTE_MS):
        bucket = state.minutes.get((region, channel, minute))
        if bucket is None:
            continue
        handled += bucket["handled"]
        handle_ms += bucket["talk_ms"] + bucket["hold_ms"] + bucket["acw_ms"]
        if minute >= end - 15 * MINUTE_MS:
            offered += bucket["offered"] - bucket["short_offered"]
            abandoned += bucket["abandoned"] - bucket["short_abandoned"]
    span_s = 15 * MINUTE_MS / 1000
    arrivals = offered / span_s if offered > 0 else None
    return [
        handle_ms / handled / 1000 if handled else None,
        arrivals,
        abandoned / span_s if arrivals is not None else None,
    ]


def contact_event(cid: str, kind: ContactEventType, t: int, region: str, channel: Channel) -> ContactEvent:
    return ContactEvent(
        event_id=f"{cid}-{kind.value}-{t}", contact_id=cid, type=kind, channel=channel, region=region,
        queue=channel.value.lower(), language="ru", customer_ref="c" * 32, event_time_ms=t,
        agent_id="a1" if kind in (ContactEventType.ANSWERED, ContactEventType.ENDED) else None,
    )  # fmt: skip


LIFE = (
    ContactEventType.ARRIVED, ContactEventType.QUEUED, ContactEventType.ANSWERED, ContactEventType.ENDED,
    ContactEventType.ACW_ENDED,
)  # fmt: skip


@pytest.mark.parametrize("seed", SEEDS)
def test_running_rate_sums_equal_the_sum_of_the_window_at_every_reading(seed: int) -> None:
    """Contacts answered, abandoned and handled over hours, events late by up to 50 min (some
    past the allowed lateness, which some seeds set to 45 min), readings at random points,
    watermark jumps of seconds to an hour, eviction in between (some seeds with a minute horizon
    shorter than the hour of AHT): every reading equals the 60-bucket sum."""
    rng = random.Random(seed)
    lateness, horizon = rng.choice([600_000, 2_700_000]), rng.choice([4_200_000, 1_200_000])
    config = KpiConfig(allowed_lateness_ms=lateness, minute_horizon_ms=horizon)
    state = PartitionState(0)
    t, readings = T0, 0
    series = [("RU-MOW", Channel.VOICE), ("RU-MOW", Channel.CHAT), ("RU-SPE", Channel.VOICE)]
    for n in range(rng.randrange(150, 400)):
        jump = rng.choice([120_000, 1_500_000, 2_400_000, 3_600_000]) if rng.random() < 0.05 else 20_000
        t += rng.randrange(0, jump)
        region, channel = rng.choice(series)
        start = t - rng.choice([0, 0, 0, rng.randrange(0, 3_000_000)])  # some contacts arrive late
        steps = LIFE if rng.random() < 0.7 else (*LIFE[:2], ContactEventType.ABANDONED)
        for i, kind in enumerate(steps):
            at = start + i * rng.randrange(1, 90_000)
            kpi.apply_contact(state, contact_event(f"c{n}", kind, at, region, channel), config)
            if rng.random() < 0.3:
                for r, c in series:
                    assert recent_rates(state, r, c.value) == naive_rates(state, r, c.value), (seed, n)
                    readings += 1
        if rng.random() < 0.05:  # surveys as far as contacts: eviction may drop minutes
            state.watermarks["survey"] = state.watermarks["contact"]
            kpi.evict(state, config)
    assert readings > 50 and any(v is not None for r, c in series for v in naive_rates(state, r, c.value))


def test_running_rate_sums_after_a_jump_take_the_entering_minutes_into_the_hour_only() -> None:
    """The window's end moves 30 min between two readings, and a late contact queues in a minute
    that entered the 60 min window but not the 15 min one: it counts for AHT's hour, not for the
    arrival rate."""
    config = KpiConfig(allowed_lateness_ms=2_700_000)
    state = PartitionState(0)

    def handled(cid: str, t: int) -> None:
        for i, kind in enumerate(LIFE):
            kpi.apply_contact(state, contact_event(cid, kind, t + i * 1_000, "RU-MOW", Channel.VOICE), config)

    handled("c0", T0)
    assert recent_rates(state, "RU-MOW", "VOICE") == naive_rates(state, "RU-MOW", "VOICE")
    handled("c1", T0 + 1_800_000)
    handled("late", T0 + 600_000)  # 20 min before the watermark: in the new hour, not in its last 15 min
    rates = recent_rates(state, "RU-MOW", "VOICE")
    assert rates == naive_rates(state, "RU-MOW", "VOICE") and rates[1] == 1 / 900


# -- per-skill tallies and the pending index -------------------------------------------------


def naive_queue_record(state: PartitionState, captured: dict[str, Any], key: str, t: int) -> dict[str, Any]:
    """``queue_record``'s agent figures before the tallies (commit acece1c): one filter per queue."""
    region, queue = key.split("|", 1)
    channel = captured["queues"][key][0]
    agents = [(aid, v) for aid, v in agents_as_of(state, region, t) if queue in v.skills]
    active = ("READY", "ON_CONTACT", "ACW", "NOT_READY", "LOGGED_IN")
    loads = captured["loads"]
    slots = sum(max(0, v.chat_concurrency - loads.get(aid, 0))
                for aid, v in agents if v.state in ("READY", "ON_CONTACT"))  # fmt: skip
    return {
        "agents_logged_in": sum(1 for _, v in agents if v.state in active),
        **{
            f"agents_{s.lower()}": sum(1 for _, v in agents if v.state == s)
            for s in ("READY", "ON_CONTACT", "ACW", "NOT_READY")
        },  # fmt: skip
        "free_chat_slots": slots if channel in ("CHAT", "MESSENGER") else 0,
        "languages": sorted({lang for _, v in agents if v.state in active for lang in v.languages}),
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_skill_tallies_give_each_queue_what_filtering_its_agents_gave(seed: int) -> None:
    rng = random.Random(seed)
    state = PartitionState(0)
    skills = ["voice", "chat", "sales"]
    for region in ("RU-MOW", "RU-SPE"):
        for queue, channel in (("voice", Channel.VOICE), ("chat", Channel.CHAT), ("sales", Channel.VOICE)):
            kpi.apply_contact(state, dataclasses.replace(
                contact_event(f"{region}{queue}", ContactEventType.ARRIVED, T0, region, channel), queue=queue,
            ), KpiConfig())  # fmt: skip
    for i in range(rng.randrange(5, 40)):
        agent_skills = tuple(rng.choice(skills) for _ in range(rng.randrange(0, 4)))  # duplicates too
        languages = tuple(rng.sample(["ru", "en", "zh"], rng.randrange(0, 3)))
        aid, region = f"a{rng.randrange(0, 15)}", rng.choice(["RU-MOW", "RU-SPE"])
        s = rng.choice(list(AgentState))
        at = T0 + rng.randrange(0, 600_000)
        event = AgentEvent(f"e{i}", aid, region, s, at, agent_skills, languages, rng.randrange(1, 4))
        kpi.apply_agent(state, event)
        record_agent(state, event)
    for aid in state.agents:
        state.agent_load[aid] = rng.randrange(0, 4)
    captured = capture(state, sorted(state.queues))
    for t in (T0 - 1, T0 + rng.randrange(0, 600_000), T0 + 600_000):
        for region in ("RU-MOW", "RU-SPE"):
            tallies = skill_tallies(agents_as_of(state, region, t), captured["loads"])
            for key in [k for k in sorted(captured["queues"]) if k.startswith(region)]:
                want = naive_queue_record(state, captured, key, t)
                for record in (queue_record(state, captured, key, t, tallies=tallies),
                               queue_record(state, captured, key, t)):  # fmt: skip
                    assert record is not None
                    assert {k: record[k] for k in want} == want, (seed, key, t - T0)


def test_on_answered_finds_a_pending_arrival_by_its_index() -> None:
    """Answered while its decision waits: the answer time is kept for the decision (EWT error);
    after the decision, or for a contact never pending here, nothing is kept."""
    rng = random.Random(3)
    state = PartitionState(0)
    router = Router(GlobalQueueTable({}, Codec.pinned()), Codec.pinned(), clock=lambda: 0.0)
    arrived = []
    for n in range(30):
        event = contact_event(f"c{n}", ContactEventType.ARRIVED, T0 + n, "RU-MOW", Channel.VOICE)
        kpi.apply_contact(state, event, KpiConfig())
        router.on_arrival(state, event)
        arrived.append(f"c{n}")
    router.on_arrival(state, contact_event("c3", ContactEventType.ARRIVED, T0 + 99, "RU-MOW", Channel.VOICE))
    assert router.duplicates == 1 and state.pending_ids == dict.fromkeys(arrived, 1)
    for cid in rng.sample(arrived, 10) + ["never-here"]:
        answered = contact_event(cid, ContactEventType.ANSWERED, T0 + 500, "RU-MOW", Channel.VOICE)
        router.on_answered(state, answered)
        pending = any(p["request"][0] == cid for p in state.pending_arrivals)  # the reference
        assert (cid in state.predictions) is pending
    restored = PartitionState(0, pending_arrivals=list(state.pending_arrivals))
    assert restored.pending_ids == state.pending_ids  # rebuilt from the checkpointed list


def test_a_contact_pending_twice_stays_pending_until_both_are_decided() -> None:
    """Never made by ``on_arrival`` (decided once), but a list may hold a contact twice: the index
    counts, as ``any`` over the list did."""
    state = PartitionState(0)
    router = Router(GlobalQueueTable({}, Codec.pinned()), Codec.pinned(), clock=lambda: 0.0)
    for t in (T0, T0 + 1):
        event = contact_event("c1", ContactEventType.ARRIVED, t, "RU-MOW", Channel.VOICE)
        kpi.apply_contact(state, event, KpiConfig())
        state.decided.clear()
        router.on_arrival(state, event)
    assert state.pending_ids == {"c1": 2}

    class Producer:
        def produce(self, *args: Any, **kwargs: Any) -> None:
            pass

    one = iter([True, False])
    router.release(state, lambda t, waited: next(one), Producer(), None)  # type: ignore[arg-type]
    assert len(state.pending_arrivals) == 1 and state.pending_ids == {"c1": 1}
    state.predictions.clear()
    router.on_answered(state, contact_event("c1", ContactEventType.ANSWERED, T0 + 9, "RU-MOW", Channel.VOICE))
    assert state.predictions["c1"][1] == "ANSWERED"  # still pending: the answer waits for the decision
    router.release(state, lambda t, waited: True, Producer(), None)  # type: ignore[arg-type]
    assert state.pending_arrivals == [] and state.pending_ids == {}
