"""cc.queue.state at a boundary: one pass over the agent histories, records only for queues that
changed (at least one per region), and a reader that sees exactly what every-queue records gave."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from streams.domain.events import AgentEvent, AgentState, Channel, ContactEvent, ContactEventType
from streams.jobs import kpi_apply as kpi
from streams.jobs.kpi_apply import KpiConfig
from streams.jobs.options import WorkerOptions
from streams.jobs.router import GlobalQueueTable, snapshot_of
from streams.jobs.routing_local import (
    capture,
    capture_boundary,
    changed_records,
    queue_record,
    record_agent,
    release_boundaries,
)
from streams.jobs.routing_release import EventTimeGate
from streams.jobs.state import AgentView, PartitionState
from streams.wire.codec import Codec
from streams.wire.topics import CONTACT_TOPIC

pytestmark = pytest.mark.unit
T0 = 1_795_400_000_000 - 1_795_400_000_000 % 60_000
EVERY = 30_000
QUEUES = (("RU-MOW", "voice"), ("RU-MOW", "sales"), ("RU-SPE", "voice"))


def arrive(state: PartitionState, cid: str, region: str, queue: str, t: int) -> None:
    for kind in (ContactEventType.ARRIVED, ContactEventType.QUEUED):
        event = ContactEvent(
            event_id=f"{cid}-{kind.value}", contact_id=cid, type=kind, channel=Channel.VOICE, region=region,
            queue=queue, language="ru", customer_ref="c" * 32, event_time_ms=t,
        )  # fmt: skip
        kpi.apply_contact(state, event, KpiConfig())


def set_agent(
    state: PartitionState, aid: str, region: str, s: AgentState, t: int, skills: tuple[str, ...]
) -> None:
    event = AgentEvent(f"{aid}-{s.value}-{t}", aid, region, s, t, skills, ("ru",), 1)
    kpi.apply_agent(state, event)
    record_agent(state, event)


def staffed() -> PartitionState:
    state = PartitionState(0)
    for i, (region, queue) in enumerate(QUEUES):
        arrive(state, f"c{i}", region, queue, T0 + 1_000)
        arrive(state, f"c{i}", region, queue, T0 + 1_000)
    # the contacts leave before the first boundary: nothing waits, so nothing ages
    for i, (region, queue) in enumerate(QUEUES):
        event = ContactEvent(
            event_id=f"c{i}-AB", contact_id=f"c{i}", type=ContactEventType.ABANDONED, channel=Channel.VOICE,
            region=region, queue=queue, language="ru", customer_ref="c" * 32, event_time_ms=T0 + 2_000,
        )  # fmt: skip
        kpi.apply_contact(state, event, KpiConfig())
    set_agent(state, "m1", "RU-MOW", AgentState.READY, T0, ("voice",))
    set_agent(state, "m2", "RU-MOW", AgentState.READY, T0, ("sales",))
    set_agent(state, "s1", "RU-SPE", AgentState.READY, T0, ("voice",))
    return state


class CountingHistories(dict[str, list[AgentView]]):
    """The partition's agent histories, counting the passes over them."""

    passes = 0

    def items(self) -> Any:
        self.passes += 1
        return super().items()


def released_keys(state: PartitionState) -> list[list[tuple[str, str]]]:
    released = release_boundaries(state, lambda t, waited: True, now=0.0, max_wait_s=5.0)
    return [[(r["region"], r["queue"]) for r in records] for records in released]


def test_unchanged_queues_publish_nothing_but_every_region_publishes_something() -> None:
    state = staffed()
    capture_boundary(state, T0 + EVERY, EVERY, now=0.0)
    assert released_keys(state) == [sorted(QUEUES)]  # the first boundary: every queue
    set_agent(state, "m1", "RU-MOW", AgentState.NOT_READY, T0 + EVERY + 5_000, ("voice",))
    set_agent(state, "x", "RU-MOW", AgentState.LOGGED_IN, T0 + 2 * EVERY + 5_000, ("voice",))  # agents past
    capture_boundary(state, T0 + 2 * EVERY, EVERY, now=0.0)
    # RU-MOW voice changed; RU-MOW sales did not; RU-SPE did not, but says it reached the boundary
    assert released_keys(state) == [[("RU-MOW", "voice"), ("RU-SPE", "voice")]]
    capture_boundary(state, T0 + 3 * EVERY, EVERY, now=0.0)
    # m1 unchanged since, x logged in: RU-MOW voice changed again (agents_logged_in 1 -> 2)
    assert released_keys(state) == [[("RU-MOW", "voice"), ("RU-SPE", "voice")]]
    capture_boundary(state, T0 + 4 * EVERY, EVERY, now=0.0)
    assert released_keys(state) == [[("RU-MOW", "sales"), ("RU-SPE", "voice")]]  # the region's first


def test_a_boundary_reads_the_agent_histories_once_for_all_queues_and_regions() -> None:
    state = staffed()
    state.agent_history = CountingHistories(state.agent_history)
    capture_boundary(state, T0 + EVERY, EVERY, now=0.0)
    capture_boundary(state, T0 + 3 * EVERY + 1, EVERY, now=0.0)  # and a gap: three boundaries pending
    assert len(state.pending_boundaries) == 3
    released = release_boundaries(state, lambda t, waited: True, now=0.0, max_wait_s=5.0)
    assert len(released) == 3 and state.agent_history.passes == 3  # one per boundary, not per queue
    # the one pass gives each record what reading the histories per queue gives
    captured = capture(state, sorted(state.queues))
    for record in [r for records in released for r in records]:
        key = f"{record['region']}|{record['queue']}"
        assert record == queue_record(state, captured, key, record["as_of_ms"])


def feed(table: GlobalQueueTable, records: list[dict[str, Any]]) -> None:
    sizes = Counter(r["region"] for r in records)
    for record in records:
        codec = Codec.pinned()
        decoded = codec.decode("cc.queue.state", codec.encode("cc.queue.state", record))
        table.add(snapshot_of(decoded), sizes[record["region"]])


def test_the_table_reads_changed_records_as_it_read_every_queue_record() -> None:
    """A random hour of agent changes: the table fed only changed records answers every as_of
    exactly as the table fed every queue's record at every boundary."""
    rng = random.Random(5)
    state = staffed()
    every, changed = GlobalQueueTable({}, Codec.pinned()), GlobalQueueTable({}, Codec.pinned())
    skills = [("voice",), ("sales",), ("voice", "sales")]
    agents = [(f"a{i}", rng.choice(["RU-MOW", "RU-SPE"]), rng.choice(skills)) for i in range(12)]
    published = skipped = 0
    t = T0 + EVERY
    for b in range(1, 121):
        t = T0 + b * EVERY
        for _ in range(rng.randrange(0, 3)):  # a few changes before the boundary, some quiet ones
            aid, region, skills = rng.choice(agents)
            set_agent(state, aid, region, rng.choice(list(AgentState)), t - rng.randrange(1, EVERY), skills)
        captured = capture(state, sorted(state.queues))
        full = [r for key in sorted(captured["queues"]) if (r := queue_record(state, captured, key, t))]
        kept = changed_records(state, [dict(r) for r in full])
        feed(every, full)
        feed(changed, kept)
        published, skipped = published + len(kept), skipped + len(full) - len(kept)
    assert skipped > published / 4  # the random hour has quiet boundaries to skip
    for probe in range(T0, t + 2 * EVERY, EVERY // 3):
        for queue in ("voice", "sales"):
            names, regions = frozenset({queue}), frozenset({"RU-MOW", "RU-SPE"})
            assert changed.as_of(probe, Channel.VOICE, names, regions) == every.as_of(
                probe, Channel.VOICE, names, regions
            ), probe - T0
    some = changed.as_of(t, Channel.VOICE, frozenset({"voice"}))[0]
    assert {s.as_of_ms for s in some.values()} == {t}  # unchanged queues read as of the last boundary


class AtEnd:
    """EndOffsets as the gate asks it: every partition read to its end (high = position)."""

    def __init__(self, state: PartitionState) -> None:
        self.state, self.asked = state, 0

    def watermarks(self, tp: Any, timeout_s: float = 5.0) -> tuple[int, int]:
        self.asked += 1
        return 0, self.state.next_offsets.get(tp.topic, 0)


def test_a_quiet_contact_stream_captures_a_boundary_only_after_the_in_flight_grace() -> None:
    """The agent stream passed a boundary the (quiet, read-to-end) contact stream has not: the
    boundary is captured once the grace for in-flight contact events has passed since it was
    due, and it is the boundary due then, not a later one the agent stream reached meanwhile."""
    state = staffed()
    state.next_offsets = {CONTACT_TOPIC: 7}
    options = WorkerOptions(queue_state_every_ms=EVERY, routing_caught_up_grace_s=1.0)
    ends = AtEnd(state)
    gate = EventTimeGate(ends, None, Codec.pinned(), options, None)  # type: ignore[arg-type]
    state.boundary_ms = T0
    state.watermarks["agent"] = T0 + EVERY + 5_000  # the boundary T0 + EVERY is due
    gate._capture_if_quiet(state, now=100.0)
    gate._capture_if_quiet(state, now=100.9)
    assert state.boundary_ms == T0 and not state.pending_boundaries and ends.asked == 0
    state.watermarks["agent"] = T0 + 3 * EVERY  # the agent stream moves on meanwhile
    gate._capture_if_quiet(state, now=101.0)
    assert state.boundary_ms == T0 + EVERY and [b["t"] for b in state.pending_boundaries] == [T0 + EVERY]
    gate._capture_if_quiet(state, now=101.5)  # the next boundary due now waits its own grace
    assert state.boundary_ms == T0 + EVERY
    gate._capture_if_quiet(state, now=102.5)
    assert [b["t"] for b in state.pending_boundaries] == [T0 + EVERY, T0 + 2 * EVERY, T0 + 3 * EVERY]
