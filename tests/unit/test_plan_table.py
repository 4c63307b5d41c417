"""The plan as the worker sees it: the latest publication per interval wins, the interval
is the one holding the partition's event time, and the collector exposes required, staffed
and planned agents side by side (planned only where a plan covers the interval)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streams.domain.events import AgentEvent, AgentState, Channel, ContactEvent, ContactEventType
from streams.domain.shift_plan import INTERVAL_MS
from streams.jobs import kpi_apply as kpi
from streams.jobs.collector import KpiCollector
from streams.jobs.kpi_apply import KpiConfig
from streams.jobs.plan_table import DAY_MS, GlobalPlanTable
from streams.jobs.state import PartitionState
from streams.wire.codec import Codec

pytestmark = pytest.mark.unit
T0 = 1_795_400_100_000 - 1_795_400_100_000 % INTERVAL_MS  # an interval start
MOW_VOICE = {"region": "RU-MOW", "channel": "VOICE"}
_T = ContactEventType


def record(start: int, planned: int, published: int, channel: str = "VOICE") -> dict[str, Any]:
    return {
        "plan_id": f"p{published}", "region": "RU-MOW", "channel": channel, "interval_start_ms": start,
        "forecast_offered": 10.0, "forecast_aht_seconds": 130.0, "required_agents": 3.5,
        "planned_agents": planned, "published_at_ms": published,
    }  # fmt: skip


def table() -> GlobalPlanTable:
    return GlobalPlanTable({"bootstrap.servers": "127.0.0.1:1"}, Codec.pinned())  # never started


def test_the_latest_publication_of_an_interval_wins_in_any_order() -> None:
    plans = table()
    plans.add(record(T0, 10, published=2))
    plans.add(record(T0, 99, published=1))  # an older publication read later (another partition)
    plans.add(record(T0 + INTERVAL_MS, 12, published=1))
    assert plans.planned("RU-MOW", "VOICE", T0) == 10
    assert plans.planned("RU-MOW", "VOICE", T0 + INTERVAL_MS - 1) == 10
    assert plans.planned("RU-MOW", "VOICE", T0 + INTERVAL_MS) == 12
    assert plans.planned("RU-MOW", "VOICE", T0 + 2 * INTERVAL_MS) is None
    assert plans.planned("RU-MOW", "CHAT", T0) is None
    plans.add(record(T0, 7, published=2))  # same publication time: the later record of the key
    assert plans.planned("RU-MOW", "VOICE", T0) == 7


def test_intervals_far_behind_event_time_are_dropped() -> None:
    plans = table()
    plans.add(record(T0, 10, published=1))
    later = T0 + 4 * DAY_MS
    plans.add(record(later, 3, published=1))
    assert plans.planned("RU-MOW", "VOICE", later) == 3
    assert plans.planned("RU-MOW", "VOICE", T0) is None  # swept: more than 2 days behind
    plans.add(record(T0, 10, published=5))  # and not taken back
    assert plans.planned("RU-MOW", "VOICE", T0) is None


def contact(cid: str, kind: ContactEventType, t: int) -> ContactEvent:
    return ContactEvent(
        event_id=f"{cid}-{kind.value}", contact_id=cid, type=kind, channel=Channel.VOICE, region="RU-MOW",
        queue="general", language="ru", customer_ref="c" * 32, event_time_ms=t,
    )  # fmt: skip


def test_collector_exposes_required_staffed_and_planned_at_the_partition_event_time() -> None:
    state, config = PartitionState(0), KpiConfig()
    for i in range(3):
        agent = AgentEvent(f"e{i}", f"a{i}", "RU-MOW", AgentState.READY, T0, ("general",), ("ru",), 1)
        kpi.apply_agent(state, agent)
    for i in range(40):  # a contact every 20 s, answered after 5 s, 130 s handle time
        t = T0 + i * 20_000
        steps = (
            (_T.QUEUED, t),
            (_T.ANSWERED, t + 5_000),
            (_T.ENDED, t + 105_000),
            (_T.ACW_ENDED, t + 135_000),
        )
        for kind, at in steps:
            kpi.apply_contact(state, contact(f"c{i}", kind, at), config)
    plans = table()
    plans.add(record(T0, 8, published=1))
    plans.add(record(T0 + INTERVAL_MS, 9, published=1))
    registry = CollectorRegistry()
    registry.register(KpiCollector(lambda: [state], threading.Lock(), plan=plans))
    assert T0 + INTERVAL_MS <= state.watermark_ms < T0 + 2 * INTERVAL_MS  # the second interval
    assert registry.get_sample_value("ccpulse_planned_agents", MOW_VOICE) == 9
    assert registry.get_sample_value("ccpulse_staffed_agents", MOW_VOICE) == 3
    required = registry.get_sample_value("ccpulse_required_agents", MOW_VOICE)
    gap = registry.get_sample_value("ccpulse_staffing_gap_agents", MOW_VOICE)
    assert required is not None and required >= 4 and gap == required - 3
    # no plan for the interval: no planned sample (not a 0 that would read as "plan: nobody")
    kpi.apply_contact(state, contact("late", ContactEventType.QUEUED, T0 + 2 * INTERVAL_MS), config)
    assert registry.get_sample_value("ccpulse_planned_agents", MOW_VOICE) is None
    assert registry.get_sample_value("ccpulse_staffed_agents", MOW_VOICE) == 3
    # without a plan table the worker still exposes staffed and required
    bare = CollectorRegistry()
    bare.register(KpiCollector(lambda: [state], threading.Lock()))
    assert bare.get_sample_value("ccpulse_staffed_agents", MOW_VOICE) == 3
    assert bare.get_sample_value("ccpulse_planned_agents", MOW_VOICE) is None
