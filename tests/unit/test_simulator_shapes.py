"""Edge shapes of the digital twin (SimConfig.EDGE_SHAPES): overflow between regions, a second
transfer, ending on hold, an ENDED after ABANDONED, answers without a queue. Each appears at its
configured rate; the ground truth equals an independent reading of the emitted events (the
hand-computed cases of DESIGN section 3, R1-R5, are in test_simulator_shape_cases.py); with
every share 0 the bytes are those the simulator wrote before the shapes existed."""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

import pytest

from streams.domain.events import (
    Channel,
    ContactEvent,
    ContactEventType,
    Resolution,
    SurveyEvent,
)
from streams.domain.regions import region_codes
from streams.simulator import SimConfig, Simulation
from streams.simulator.config import WECHAT_REGIONS, ZH_QUEUE, Faults
from streams.simulator.output import materialise
from streams.simulator.run import DEFAULT_START
from streams.simulator.sinks import partition_of
from streams.simulator.truth import MINUTE_MS, SHORT_ABANDON_MS, MinuteKpi
from streams.wire.codec import Codec

pytestmark = pytest.mark.unit

T = ContactEventType
PEAK = DEFAULT_START + timedelta(hours=6)  # 09:00 in Moscow
# three WeChat regions (MOW, SPE, PRI); on 12 partitions MOW and SPE share one, PRI and NVS another
REGIONS = ("RU-MOW", "RU-SPE", "RU-PRI", "RU-KAM", "RU-NVS", "RU-TA")
FEW = ("RU-MOW", "RU-PRI", "RU-KAM", "RU-NVS", "RU-TA")
TARGET_MS = {c: p.answer_target_s * 1000 for c, p in SimConfig().channels.items()}


# -- with every share 0 nothing changes -------------------------------------------------------

# sha256 of the framed records written before the edge shapes existed (commit 2f15f2f)
# Changed once, with cc.agent.events schema 104 (issue 18): every agent event carries the
# NOT_READY reason (a null here) and the new schema id; every other byte was checked equal.
GOLDEN = {
    "clean": "9265bd7c6a727e81dc2f2a1c98b44b8477208879da41fed619824ac69ac6da74",
    "faults": "a39df24b3a71987d20d57d309967a1cdd8c25eaca4a83e6992c13bc59042c742",
}


def framed_digest(sim: Simulation) -> str:
    digest = hashlib.sha256()
    for batch in sim.batches():
        for item in batch:
            digest.update(sim.encoder.frame(item))
    return digest.hexdigest()


def test_with_every_share_zero_the_bytes_are_unchanged() -> None:
    assert not SimConfig().edge_shapes
    clean = Simulation(SimConfig(regions=FEW), seed=5, start=PEAK, duration_s=1800)
    assert framed_digest(clean) == GOLDEN["clean"]
    faulty = SimConfig(regions=FEW, faults=Faults(0.01, 0.01, 0.01))
    assert framed_digest(Simulation(faulty, seed=7, start=PEAK, duration_s=1800)) == GOLDEN["faults"]
    chunk = Simulation(SimConfig(regions=FEW)).engine.model.chunk(Simulation().start_ms)
    assert len(chunk) > 0 and chunk.overflow_u == chunk.direct_u == []  # no extra draws


def test_edge_shapes_leave_the_draws_of_every_other_contact_attribute_alone() -> None:
    base = Simulation(SimConfig(regions=FEW), seed=5, start=PEAK).engine.model
    edged = Simulation(SimConfig(regions=FEW).with_edge_shapes(), seed=5, start=PEAK).engine.model
    plain, extra = base.chunk(base_hour := Simulation(start=PEAK).start_ms), edged.chunk(base_hour)
    assert plain.time_ms == extra.time_ms and plain.handle_s == extra.handle_s
    assert plain.transfer_u == extra.transfer_u and len(extra.direct_u) == len(extra)


# -- the shapes at their rates ----------------------------------------------------------------


@pytest.fixture(scope="module")
def shaped() -> tuple[list[Any], list[MinuteKpi], Simulation]:
    minutes: list[MinuteKpi] = []
    config = SimConfig(regions=REGIONS).with_edge_shapes(rate=0.03, of_eligible=0.25)
    sim = Simulation(config, seed=11, start=PEAK, duration_s=3 * 3600, on_truth=minutes.extend)
    records = [materialise(item, sim.prefix) for batch in sim.batches() for item in batch]
    return records, minutes, sim


def contacts_of(records: list[Any]) -> dict[str, list[ContactEvent]]:
    by_contact: dict[str, list[ContactEvent]] = defaultdict(list)
    for r in records:
        if isinstance(r.event, ContactEvent):
            by_contact[r.event.contact_id].append(r.event)
    return by_contact


def near(observed: int, trials: int, share: float) -> bool:
    """Within 4 binomial standard deviations (and some contacts of the shape at all)."""
    return observed > 0 and abs(observed - trials * share) <= 4 * math.sqrt(trials * share * (1 - share))


def test_overflow_at_its_rate_keeps_queue_and_language_and_keys_by_the_handling_region(
    shaped: tuple,
) -> None:
    records, _, _ = shaped
    by_contact = contacts_of(records)
    overflowed = {c: ev for c, ev in by_contact.items() if len(ev) > 1 and ev[1].region != ev[0].region}
    assert near(len(overflowed), len(by_contact), 0.03)
    for events in overflowed.values():
        home, handling = events[0].region, events[1].region
        assert events[0].home_region is None and {e.home_region for e in events[1:]} == {home}
        assert {e.region for e in events[1:]} == {handling} and handling in REGIONS
        assert {e.queue for e in events} == {events[0].queue}  # same skill, other region
        if events[0].queue == ZH_QUEUE:
            assert handling in WECHAT_REGIONS and events[0].language == "zh"
    keys = {(r.event.contact_id, r.event.type): r.key for r in records if isinstance(r.event, ContactEvent)}
    for cid, events in overflowed.items():
        for e in events:  # R1 on the wire: ARRIVED keyed by home, the rest by the handling region
            assert keys[(cid, e.type)] == e.region
    pairs = {(ev[0].region, ev[1].region) for ev in overflowed.values()}
    same = {p for p in pairs if partition_of(p[0], 12) == partition_of(p[1], 12)}
    assert same and pairs - same  # overflow within a partition and across partitions
    assert any(ev[0].queue == ZH_QUEUE for ev in overflowed.values())


def test_answers_without_a_queue_at_their_rate(shaped: tuple) -> None:
    records, _, _ = shaped
    by_contact = contacts_of(records)
    direct = [ev for ev in by_contact.values() if T.QUEUED not in {e.type for e in ev}]
    assert near(len(direct), len(by_contact), 0.03)
    for events in direct:
        kinds = [e.type for e in events]
        assert kinds[:3] == [T.ARRIVED, T.OFFERED, T.ANSWERED] and kinds[-2:] == [T.ENDED, T.ACW_ENDED]
        assert T.ABANDONED not in kinds and events[2].agent_id is not None


def test_second_transfers_at_their_rate(shaped: tuple) -> None:
    records, _, _ = shaped
    transferred = [ev for ev in contacts_of(records).values() if T.TRANSFERRED in {e.type for e in ev}]
    twice = [ev for ev in transferred if [e.type for e in ev].count(T.TRANSFERRED) == 2]
    assert near(len(twice), len(transferred), 0.25)
    for events in twice:
        kinds = [e.type for e in events]
        assert kinds.count(T.TRANSFERRED) == 2 and kinds.index(T.ENDED) > len(kinds) - 1 - kinds[::-1].index(
            T.TRANSFERRED
        )


def test_ending_on_hold_at_its_rate(shaped: tuple) -> None:
    records, _, _ = shaped
    held = [ev for ev in contacts_of(records).values() if T.HOLD_STARTED in {e.type for e in ev}]
    open_at_end = []
    for events in held:
        kinds = [e.type for e in events]
        assert events[0].channel is Channel.VOICE
        if kinds.count(T.HOLD_STARTED) == kinds.count(T.HOLD_ENDED) + 1:
            holds = [k for k in kinds if k in (T.HOLD_STARTED, T.HOLD_ENDED)]
            assert holds[-1] is T.HOLD_STARTED and kinds[-2:] == [T.ENDED, T.ACW_ENDED]
            open_at_end.append(events)
        else:
            assert kinds.count(T.HOLD_STARTED) == kinds.count(T.HOLD_ENDED)
    assert near(len(open_at_end), len(held), 0.25)


def test_an_ended_after_abandoning_at_its_rate(shaped: tuple) -> None:
    records, _, sim = shaped
    abandoned = [ev for ev in contacts_of(records).values() if T.ABANDONED in {e.type for e in ev}]
    closed = [ev for ev in abandoned if ev[-1].type is T.ENDED]
    assert near(len(closed), len(abandoned), 0.25)
    low, high = sim.config.abandon_end_delay_s
    for events in closed:
        assert [e.type for e in events] == [T.ARRIVED, T.QUEUED, T.ABANDONED, T.ENDED]
        end = events[-1]
        assert end.agent_id is None and end.resolution is Resolution.UNRESOLVED
        assert low * 1000 <= end.event_time_ms - events[2].event_time_ms <= high * 1000


def test_every_shaped_event_is_valid_and_encodes_to_the_codec_bytes(shaped: tuple) -> None:
    _, _, sim = shaped
    codec = Codec.pinned(known_regions=region_codes())
    edged = Simulation(sim.config, seed=2, start=PEAK, duration_s=1800)
    for batch in edged.batches():
        for item in batch:
            record = materialise(item, edged.prefix)
            encoded = edged.encoder.encode(item)
            assert encoded.value == codec.encode(record.topic, record.event)
            assert encoded.key == record.key.encode()
            assert codec.decode(record.topic, encoded.value) == record.event


# -- ground truth: R1-R5 ----------------------------------------------------------------------


def reference_truth(records: list[Any]) -> dict[tuple[int, str, str], dict[str, int]]:
    """DESIGN section 3 (R1-R5) applied to the emitted domain events, contact by contact."""
    buckets: dict[tuple[int, str, str], Counter[str]] = defaultdict(Counter)
    for events in contacts_of(records).values():
        first = {e.type: e for e in reversed(events)}  # each type's first event
        after_arrival = [e for e in events if e.type is not T.ARRIVED]
        if not after_arrival:
            continue
        region = (first.get(T.QUEUED) or after_arrival[0]).region  # R1
        channel = events[0].channel

        def bucket(e: ContactEvent, region: str = region, channel: Channel = channel) -> Counter[str]:
            return buckets[(e.event_time_ms - e.event_time_ms % MINUTE_MS, region, channel.value)]

        queued, answered = first.get(T.QUEUED), first.get(T.ANSWERED)
        if queued is not None:
            bucket(queued)["offered"] += 1
            left = answered or first.get(T.ABANDONED)
            wait = None if left is None else left.event_time_ms - queued.event_time_ms
            if answered is not None and wait is not None:
                b = bucket(answered)
                b["answered"] += 1
                b["wait_ms_answered"] += wait
                b["answered_within_target"] += wait <= TARGET_MS[channel]
            elif left is not None and wait is not None:
                bucket(left)["short_abandoned" if wait < SHORT_ABANDON_MS else "abandoned"] += 1
        ended, acw = first.get(T.ENDED), first.get(T.ACW_ENDED)
        if answered is None or ended is None:  # R5a: an ENDED without an answer counts nothing
            continue
        bucket(ended)["ended"] += 1
        bucket(ended)["resolved_first_line"] += ended.resolution is Resolution.RESOLVED_FIRST_LINE
        if acw is None:
            continue
        starts = [e.event_time_ms for e in events if e.type is T.HOLD_STARTED]
        ends = [e.event_time_ms for e in events if e.type is T.HOLD_ENDED]
        open_hold = len(starts) - len(ends)
        assert open_hold in (0, 1)
        hold = sum(ends) + (ended.event_time_ms if open_hold else 0) - sum(starts)  # R3
        b = bucket(acw)
        b["handled"] += 1
        b["hold_ms"] += hold
        b["talk_ms"] += ended.event_time_ms - answered.event_time_ms - hold
        b["acw_ms"] += acw.event_time_ms - ended.event_time_ms
        b["transferred"] += any(e.type is T.TRANSFERRED for e in events)  # R2
    for r in records:
        if isinstance(r.event, SurveyEvent):
            s = r.event
            b = buckets[(s.event_time_ms - s.event_time_ms % MINUTE_MS, s.region, s.channel.value)]
            b["surveys"] += 1
            b["top_box"] += s.score == 5
            b["score_sum"] += s.score
    return {k: {c: v for c, v in b.items() if v} for k, b in buckets.items() if any(b.values())}


def truth_rows(minutes: list[MinuteKpi]) -> dict[tuple[int, str, str], dict[str, int]]:
    out = {}
    for m in minutes:
        row = {c: v for c, v in m.as_row().items() if c not in ("minute_ms", "region", "channel") and v}
        if row:
            out[(m.minute_ms, m.region, m.channel)] = row
    return out


def test_ground_truth_equals_r1_to_r5_read_from_the_events(shaped: tuple) -> None:
    records, minutes, _ = shaped
    assert truth_rows(minutes) == reference_truth(records)
    totals = Counter()
    for m in minutes:
        totals.update({"transferred": m.transferred, "handled": m.handled, "ended": m.ended})
    assert 0 < totals["transferred"] < totals["handled"] <= totals["ended"]


def test_the_engine_counters_agree_with_the_ground_truth(shaped: tuple) -> None:
    _, minutes, sim = shaped
    engine: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for (region, channel), t in sim.engine.truth.items():
        engine[(region, channel.value)].update(
            offered=t.offered, answered=t.answered, within=t.answered_within_target,
            abandoned=t.abandoned, wait=t.wait_ms_answered,
        )  # fmt: skip
    truth: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for m in minutes:
        truth[(m.region, m.channel)].update(
            offered=m.offered, answered=m.answered, within=m.answered_within_target,
            abandoned=m.abandoned + m.short_abandoned, wait=m.wait_ms_answered,
        )  # fmt: skip
    drop_zero = lambda d: {k: +v for k, v in d.items() if +v}  # noqa: E731
    assert drop_zero(engine) == drop_zero(truth)
