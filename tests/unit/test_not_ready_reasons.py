"""An agent's NOT_READY reason in the KPI state: kept per agent, checkpointed (format 3; formats
1 and 2 load without reasons), and exposed as ccpulse_agents_not_ready{region, reason}."""

from __future__ import annotations

import json
import threading
import zlib

import pytest
from prometheus_client import CollectorRegistry

from streams.domain.events import AgentEvent, AgentState
from streams.jobs import kpi_apply as kpi
from streams.jobs.collector import MAX_REASON_LABELS, KpiCollector
from streams.jobs.state import FORMAT_VERSION, PartitionState, dumps, loads

pytestmark = pytest.mark.unit

T0 = 1_795_400_000_000


def agent(
    aid: str, state: AgentState, t: int, reason: str | None = None, region: str = "RU-MOW"
) -> AgentEvent:
    return AgentEvent(f"{aid}-{t}", aid, region, state, t, ("general",), ("ru",), 1, reason)


def scrape(*states: PartitionState) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(KpiCollector(lambda: list(states), threading.Lock()))
    return registry


def not_ready(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {
        (s.labels["region"], s.labels["reason"]): s.value
        for metric in registry.collect()
        if metric.name == "ccpulse_agents_not_ready"
        for s in metric.samples
    }


def test_the_reason_follows_the_agent_and_leaves_with_the_not_ready_state() -> None:
    state = PartitionState(0)
    kpi.apply_agent(state, agent("a1", AgentState.READY, T0))
    kpi.apply_agent(state, agent("a1", AgentState.NOT_READY, T0 + 1_000, "BREAK"))
    assert (state.agents["a1"].state, state.agents["a1"].reason) == ("NOT_READY", "BREAK")
    kpi.apply_agent(state, agent("a1", AgentState.NOT_READY, T0 + 500, "LUNCH"))  # older: ignored
    assert state.agents["a1"].reason == "BREAK"
    kpi.apply_agent(state, agent("a1", AgentState.READY, T0 + 2_000))
    assert (state.agents["a1"].state, state.agents["a1"].reason) == ("READY", "")


def test_reasons_survive_a_checkpoint_and_older_formats_load_without_them() -> None:
    state = PartitionState(3, next_offsets={"cc.agent.events": 9}, epoch=2)
    kpi.apply_agent(state, agent("a1", AgentState.NOT_READY, T0, "OFFLINE"))
    kpi.apply_agent(state, agent("a2", AgentState.READY, T0))
    assert FORMAT_VERSION == 3
    restored = loads(dumps(state))
    assert (restored.agents["a1"].reason, restored.agents["a2"].reason) == ("OFFLINE", "")
    document = json.loads(zlib.decompress(dumps(state)))
    assert document["agents"]["a2"] == ["RU-MOW", "READY", ["general"], ["ru"], 1, T0, "", [f"a2-{T0}"]]
    # a format-2 checkpoint (agents of 6 items): loads, every reason empty, is written back as 3
    document["agents"] = {a: v[:6] for a, v in document["agents"].items()}
    old = loads(zlib.compress(json.dumps({**document, "format": 2}).encode()))
    assert (old.agents["a1"].state, old.agents["a1"].reason, old.epoch) == ("NOT_READY", "", 2)
    assert json.loads(zlib.decompress(dumps(old)))["format"] == 3
    with pytest.raises(ValueError, match="format 4"):  # a newer worker's checkpoint: refused, not misread
        loads(zlib.compress(json.dumps({**document, "format": 4}).encode()))


def test_not_ready_by_reason_adds_up_to_the_not_ready_agents_of_each_region() -> None:
    a, b = PartitionState(0), PartitionState(1)
    for i, reason in enumerate(["BREAK", "BREAK", "LUNCH", None]):
        kpi.apply_agent(a, agent(f"m{i}", AgentState.NOT_READY, T0, reason))
    kpi.apply_agent(a, agent("m9", AgentState.READY, T0))
    kpi.apply_agent(b, agent("k1", AgentState.NOT_READY, T0, "OFFLINE", region="RU-KGD"))
    kpi.apply_agent(b, agent("k2", AgentState.ON_CONTACT, T0, region="RU-KGD"))
    kpi.apply_agent(b, agent("n1", AgentState.READY, T0, region="RU-NVS"))
    registry = scrape(a, b)
    assert not_ready(registry) == {
        ("RU-MOW", "BREAK"): 2, ("RU-MOW", "LUNCH"): 1, ("RU-MOW", "UNSPECIFIED"): 1,
        ("RU-KGD", "OFFLINE"): 1, ("RU-KGD", "UNSPECIFIED"): 0,
        ("RU-NVS", "UNSPECIFIED"): 0,  # a region with agents, none NOT_READY: a 0, not a missing series
    }  # fmt: skip
    for region in ("RU-MOW", "RU-KGD", "RU-NVS"):
        total = registry.get_sample_value("ccpulse_agents", {"region": region, "state": "NOT_READY"})
        assert sum(n for (r, _), n in not_ready(registry).items() if r == region) == total


def test_a_producer_cannot_blow_up_the_reason_label() -> None:
    state = PartitionState(0)
    codes = [f"AUX_{i:02d}" for i in range(40)]
    for i, code in enumerate(codes):  # AUX_00 by 40 agents, AUX_01 by 39, ... AUX_39 by 1
        for j in range(40 - i):
            kpi.apply_agent(state, agent(f"a{i}-{j}", AgentState.NOT_READY, T0, code))
    series = not_ready(scrape(state))
    assert len(series) == MAX_REASON_LABELS + 1  # the codes kept, OTHER, and UNSPECIFIED (0 here)
    kept = [code for (_, code) in series if code not in ("OTHER", "UNSPECIFIED")]
    assert sorted(kept) == codes[: MAX_REASON_LABELS - 1]  # the most common ones keep their name
    assert sum(series.values()) == sum(range(1, 41))  # nobody lost in the fold
    assert series[("RU-MOW", "OTHER")] == sum(40 - i for i in range(MAX_REASON_LABELS - 1, 40))
    # at the cap or under it every code keeps its name, and UNSPECIFIED is no code
    small = PartitionState(1)
    for i, code in enumerate(codes[:MAX_REASON_LABELS]):
        kpi.apply_agent(small, agent(f"s{i}", AgentState.NOT_READY, T0, code))
    assert {code for (_, code) in not_ready(scrape(small))} == {*codes[:MAX_REASON_LABELS], "UNSPECIFIED"}
