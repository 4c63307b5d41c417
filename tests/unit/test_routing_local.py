"""Routing as of event time without Kafka: agent histories, captures, boundaries, deferred
decisions, de-duplication that outlives the lateness, and pending decisions across a restart."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from streams.domain.events import AgentEvent, AgentState, Channel, ContactEvent, ContactEventType
from streams.domain.routing import QueueSnapshot
from streams.jobs import kpi_apply as kpi
from streams.jobs.kpi_apply import KpiConfig
from streams.jobs.router import Router
from streams.jobs.routing_local import (
    agents_as_of,
    capture,
    capture_boundary,
    evict_routing,
    queue_record,
    record_agent,
    release_boundaries,
)
from streams.jobs.state import PartitionState, dumps, loads
from streams.wire.codec import Codec

pytestmark = pytest.mark.unit
T0 = 1_795_400_000_000 - 1_795_400_000_000 % 60_000
CONFIG = KpiConfig()
_T = ContactEventType


def contact(cid: str, kind: ContactEventType, t: int, region: str = "RU-MOW", n: int = 0) -> ContactEvent:
    return ContactEvent(
        event_id=f"{cid}-{kind.value}-{n}", contact_id=cid, type=kind, channel=Channel.VOICE, region=region,
        queue="voice", language="ru", customer_ref="c" * 32, event_time_ms=t,
    )  # fmt: skip


def agent(aid: str, state: AgentState, t: int, region: str = "RU-MOW") -> AgentEvent:
    return AgentEvent(f"{aid}-{state.value}-{t}", aid, region, state, t, ("voice",), ("ru",), 1)


def apply_agent(state: PartitionState, event: AgentEvent) -> None:
    kpi.apply_agent(state, event)
    record_agent(state, event)


class Table:
    """A GlobalQueueTable stand-in: fixed records, and regions reported as not current."""

    def __init__(self, records: dict[tuple[str, str], QueueSnapshot] | None = None) -> None:
        self.records, self.lagging = records or {}, set[str]()

    def as_of(
        self, t: int, channel: Channel, names: frozenset[str], regions: Any = None, sources: Any = None
    ) -> tuple[dict, set[str]]:
        return dict(self.records), set(self.lagging)


class Producer:
    def __init__(self) -> None:
        self.values: list[dict[str, Any]] = []

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any = None) -> None:
        self.values.append(Codec.pinned().decode(topic, value))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def arrive(state: PartitionState, router: Router, contact_id: str, t: int) -> Any:
    """An ARRIVED event applied to the KPIs and handed to the router, as the worker does."""
    arrived = contact(contact_id, _T.ARRIVED, t)
    kpi.apply_contact(state, arrived, CONFIG)
    router.on_arrival(state, arrived)
    return arrived


def test_agent_states_as_of_t_ignore_later_events_already_applied() -> None:
    state = PartitionState(0)
    apply_agent(state, agent("a1", AgentState.READY, T0))
    apply_agent(state, agent("a1", AgentState.LOGGED_OUT, T0 + 20_000))
    apply_agent(state, agent("a1", AgentState.NOT_READY, T0 + 10_000))  # out of order: inserted
    assert [v.state for _, v in agents_as_of(state, "RU-MOW", T0 + 5_000)] == ["READY"]
    assert [v.state for _, v in agents_as_of(state, "RU-MOW", T0 + 10_000)] == ["NOT_READY"]
    assert [v.state for _, v in agents_as_of(state, "RU-MOW", T0 - 1)] == []
    assert state.agents["a1"].state == "LOGGED_OUT"  # the KPI view stays the latest


def test_history_is_bounded_but_keeps_the_state_at_the_floor() -> None:
    state = PartitionState(0)
    for i in range(100):
        apply_agent(state, agent("a1", AgentState.READY if i % 2 else AgentState.ACW, T0 + i * 60_000))
    state.watermarks["contact"] = T0 + 99 * 60_000
    evict_routing(state)
    history = state.agent_history["a1"]
    assert len(history) == 31 and history[0].event_time_ms == T0 + 69 * 60_000  # 30 min + the one before


def test_a_queue_record_reads_contacts_at_the_capture_and_agents_as_of_t() -> None:
    state = PartitionState(0)
    apply_agent(state, agent("a1", AgentState.READY, T0))
    apply_agent(state, agent("a2", AgentState.READY, T0))
    for cid in ("c1", "c2"):
        kpi.apply_contact(state, contact(cid, _T.ARRIVED, T0 + 1_000), CONFIG)
        kpi.apply_contact(state, contact(cid, _T.QUEUED, T0 + 1_000), CONFIG)
    captured = capture(state, ["RU-MOW|voice"])
    kpi.apply_contact(state, contact("c1", _T.ABANDONED, T0 + 9_000), CONFIG)  # after the capture
    apply_agent(state, agent("a2", AgentState.LOGGED_OUT, T0 + 9_000))  # after t
    record = queue_record(state, captured, "RU-MOW|voice", T0 + 5_000)
    assert record is not None
    assert (record["contacts_in_queue"], record["agents_logged_in"], record["agents_ready"]) == (2, 2, 2)
    assert record["oldest_contact_age_seconds"] == 4.0 and record["languages"] == ["ru"]
    assert record["arrival_rate_per_s"] == pytest.approx(2 / 900)
    Codec.pinned().encode("cc.queue.state", record)


def test_boundaries_are_captured_once_and_released_when_the_agent_stream_passed_them() -> None:
    state = PartitionState(0)
    kpi.apply_contact(state, contact("c1", _T.ARRIVED, T0 + 1_000), CONFIG)
    capture_boundary(state, T0 + 31_000, 30_000, now=0.0)
    capture_boundary(state, T0 + 45_000, 30_000, now=0.0)  # same boundary: nothing new
    capture_boundary(state, T0 + 29_000, 30_000, now=0.0)  # a late event: nothing
    assert [p["t"] for p in state.pending_boundaries] == [T0 + 30_000]
    capture_boundary(state, T0 + 125_000, 30_000, now=0.0)  # a quiet gap gets every boundary
    assert [p["t"] - T0 for p in state.pending_boundaries] == [30_000, 60_000, 90_000, 120_000]
    del state.pending_boundaries[1:]
    not_yet = release_boundaries(state, lambda t, waited: False, now=1.0, max_wait_s=5.0)
    assert not_yet == [] and len(state.pending_boundaries) == 1
    ((record,),) = release_boundaries(state, lambda t, waited: True, now=1.0, max_wait_s=5.0)
    assert record["as_of_ms"] == T0 + 30_000 and record["agents_logged_in"] == 0
    assert state.pending_boundaries == []


def test_a_decision_waits_for_the_agent_stream_and_reads_home_as_of_t() -> None:
    state, clock, producer = PartitionState(0), Clock(), Producer()
    router = Router(Table(), Codec.pinned(), clock=clock)  # type: ignore[arg-type]
    apply_agent(state, agent("a1", AgentState.READY, T0))
    arrive(state, router, "c1", T0 + 10_000)
    router.release(state, lambda t, waited: state.watermarks["agent"] > t, producer, None)
    assert producer.values == [] and len(state.pending_arrivals) == 1  # the agent stream is behind
    apply_agent(state, agent("a1", AgentState.LOGGED_OUT, T0 + 5_000))  # before t: counts
    apply_agent(state, agent("a2", AgentState.READY, T0 + 20_000))  # after t: must not count
    router.release(state, lambda t, waited: state.watermarks["agent"] > t, producer, None)
    (decision,) = producer.values
    home = decision["candidates"][0]
    assert (home["region"], home["queue"], home["eligible"]) == ("RU-MOW", "voice", False)
    assert decision["reason"] == "NO_AGENTS_LOGGED_IN" and decision["target_region"] == "RU-MOW"


def test_remote_regions_not_current_hold_the_decision_until_the_wall_clock_bound() -> None:
    state, clock, producer, table = PartitionState(0), Clock(), Producer(), Table()
    table.lagging = {"RU-SPE"}
    router = Router(table, Codec.pinned(), max_wait_s=5.0, clock=clock)  # type: ignore[arg-type]
    apply_agent(state, agent("a1", AgentState.READY, T0))
    arrive(state, router, "c1", T0 + 10_000)
    clock.now = 4.9
    router.release(state, lambda t, waited: True, producer, None)
    assert producer.values == []
    clock.now = 5.0
    router.release(state, lambda t, waited: True, producer, None)
    assert producer.values[0]["reason"] == "HOME" and router.waited_out == 1


def test_a_late_duplicate_arrival_is_not_decided_again_and_pending_survives_a_restart() -> None:
    state, clock, producer = PartitionState(0), Clock(), Producer()
    router = Router(Table(), Codec.pinned(), clock=clock)  # type: ignore[arg-type]
    apply_agent(state, agent("a1", AgentState.READY, T0))
    arrive(state, router, "c1", T0 + 1_000)
    # a crash while c1 is pending: the checkpoint holds it, with its capture
    restored = loads(dumps(state))
    assert restored.pending_arrivals[0]["request"][0] == "c1" and "since" not in restored.pending_arrivals[0]
    router.release(restored, lambda t, waited: True, producer, None)
    assert [d["contact_id"] for d in producer.values] == ["c1"]
    for kind, dt in ((_T.QUEUED, 1_000), (_T.ANSWERED, 2_000), (_T.ENDED, 90_000), (_T.ACW_ENDED, 99_000)):
        kpi.apply_contact(restored, contact("c1", kind, T0 + dt), CONFIG)
    # 45 min later (past the KPI lateness: its progress is evicted) the ARRIVED is re-delivered
    restored.watermarks["contact"] = restored.watermarks["survey"] = T0 + 45 * 60_000
    kpi.evict(restored, CONFIG)
    evict_routing(restored)
    assert "c1" not in restored.progress
    late = contact("c1", _T.ARRIVED, T0 + 1_000)
    assert kpi.apply_contact(restored, late, CONFIG)  # new to the KPI state again
    router.on_arrival(restored, late)
    router.release(restored, lambda t, waited: True, producer, None)
    assert len(producer.values) == 1 and router.duplicates == 1
    assert loads(dumps(restored)).decided == {"c1": T0 + 1_000}


def test_a_format_2_checkpoint_without_the_routing_keys_still_loads() -> None:
    import json
    import zlib

    document = json.loads(zlib.decompress(dumps(PartitionState(3, epoch=2))))
    for key in ("agent_history", "decided", "pending_arrivals", "pending_boundaries", "boundary_ms"):
        del document[key]
    state = loads(zlib.compress(json.dumps(document).encode()))
    assert (state.partition, state.epoch, state.decided, state.pending_arrivals) == (3, 2, {}, [])


def test_history_is_kept_for_a_pending_decision_however_far_the_streams_moved_on() -> None:
    state = PartitionState(0)
    apply_agent(state, agent("a1", AgentState.READY, T0))
    arrived = contact("c1", _T.ARRIVED, T0 + 1_000)
    kpi.apply_contact(state, arrived, CONFIG)
    Router(Table(), Codec.pinned()).on_arrival(state, arrived)  # type: ignore[arg-type]
    for i in range(1, 100):  # a backlog read on while c1 waits for other regions
        apply_agent(state, agent("a1", AgentState.NOT_READY if i % 2 else AgentState.READY, T0 + i * 60_000))
    state.watermarks["contact"] = T0 + 99 * 60_000
    evict_routing(state)
    assert [v.state for _, v in agents_as_of(state, "RU-MOW", T0 + 1_000)] == ["READY"]


def test_events_at_the_same_millisecond_apply_in_stream_order() -> None:
    state = PartitionState(0)
    apply_agent(state, agent("a1", AgentState.LOGGED_IN, T0))
    apply_agent(state, agent("a1", AgentState.READY, T0))  # a shift start: logged in, then ready
    apply_agent(state, agent("a1", AgentState.READY, T0))  # a duplicate
    assert [(v.state, v.event_time_ms) for v in state.agent_history["a1"]] == [("READY", T0)]
    # answered at once, then a duplicate of the READY of the same millisecond, in time and late
    apply_agent(state, agent("a1", AgentState.ON_CONTACT, T0))
    apply_agent(state, agent("a1", AgentState.ACW, T0 + 60_000))
    apply_agent(state, agent("a1", AgentState.READY, T0))
    assert [(v.state, v.event_time_ms) for v in state.agent_history["a1"]] == [
        ("ON_CONTACT", T0), ("ACW", T0 + 60_000)
    ]  # fmt: skip
    restored = loads(dumps(state))  # the ids of a millisecond survive a checkpoint
    apply_agent(restored, agent("a1", AgentState.READY, T0))
    assert [v.state for v in restored.agent_history["a1"]] == ["ON_CONTACT", "ACW"]


def test_a_region_is_current_only_once_every_record_of_its_boundary_is_read() -> None:
    from streams.jobs.router import GlobalQueueTable

    table = GlobalQueueTable({}, Codec.pinned())  # not started: fed by hand

    def snap(queue: str, as_of: int) -> QueueSnapshot:
        return QueueSnapshot(
            "RU-SPE", queue, Channel.VOICE, frozenset({"ru"}), 0, 3, 1, 0, 140.0, None, None, as_of
        )

    names = frozenset({"voice"})
    table.add(snap("chat", T0 + 30_000), boundary_size=2)  # the voice record is on another partition
    assert table.as_of(T0 + 40_000, Channel.VOICE, names, frozenset({"RU-SPE"})) == ({}, {"RU-SPE"})
    table.add(snap("voice", T0 + 30_000), boundary_size=2)
    found, lagging = table.as_of(T0 + 30_000, Channel.VOICE, names, frozenset({"RU-SPE"}))
    assert list(found) == [("RU-SPE", "voice")] and lagging == set()
    assert table.as_of(T0 + 30_001, Channel.VOICE, names, frozenset({"RU-SPE"}))[1] == {"RU-SPE"}


@pytest.mark.parametrize("reason", ["NO_AGENTS_HOME", "NO_STATE"])
def test_the_new_reasons_encode_with_the_pinned_schema(reason: str) -> None:
    from streams.domain.routing import Reason, RoutingParams, RoutingRequest, decide
    from streams.jobs.router import decision_record
    from streams.wire.topics import DECISIONS_TOPIC

    decision = decide(
        RoutingRequest("c1", "e1", "RU-TOM", "voice", Channel.VOICE, "ru", 0, T0), {}, RoutingParams()
    )
    record = decision_record(dataclasses.replace(decision, reason=Reason(reason)))
    codec = Codec.pinned()
    assert codec.decode(DECISIONS_TOPIC, codec.encode(DECISIONS_TOPIC, record))["reason"] == reason
