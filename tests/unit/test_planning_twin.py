"""The Erlang baseline plan covers its requirement; ``evaluate`` measures a plan in the twin."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams.domain.shift_plan import INTERVAL_MS, planned_agents
from streams.planning.baseline import BREAK_VARIANTS, SHIFT_INTERVALS, cover, erlang_plan
from streams.planning.plan_file import read_plan, write_plan
from streams.planning.twin import evaluate, plan_span

pytestmark = pytest.mark.unit
START = datetime(2026, 5, 11, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    "required",
    [[0, 0, 1, 1, 1], [3] * 40, [1, 4, 9, 2, 0, 0, 7] * 9, [5] * 8 + [0] * 30 + [2] * 8],
)
def test_greedy_shifts_cover_the_requirement(required: list[int]) -> None:
    shifts = cover(required)
    floor = [0] * (len(required) + SHIFT_INTERVALS)
    for start, variant, agents in shifts:
        brk, lunch = BREAK_VARIANTS[variant]
        for k in range(SHIFT_INTERVALS):
            if k != brk and k not in (lunch, lunch + 1):
                floor[start + k] += agents
    assert all(f >= r for f, r in zip(floor, required, strict=False))
    assert all(start < len(required) for start, _, _ in shifts)  # none starts after the horizon


def test_baseline_plan_file_round_trips_and_matches_its_intervals(tmp_path: Path) -> None:
    plan = erlang_plan(["RU-KGD"], START, days=0.25)
    assert len(plan.intervals) == 4 * 24  # 4 channels x 24 intervals
    for i in plan.intervals:
        assert i.planned_agents == planned_agents(plan.shifts, i.region, i.channel, i.interval_start_ms)
        assert i.planned_agents >= i.required_agents > 0
    assert {b.reason for s in plan.shifts for b in s.breaks} == {"BREAK", "LUNCH"}
    path = tmp_path / "plan.json"
    write_plan(path, plan)
    assert read_plan(path) == plan


def test_evaluate_reports_every_interval_against_the_targets() -> None:
    plan = erlang_plan(["RU-KGD"], START, days=0.25)
    start_ms, end_ms = plan_span(plan)
    assert (start_ms, end_ms) == (
        int(START.timestamp() * 1000),
        int(START.timestamp() * 1000) + 6 * 3_600_000,
    )
    result = evaluate(plan, seed=2)
    assert [i.interval_start_ms for i in result.intervals[:24]] == list(range(start_ms, end_ms, INTERVAL_MS))
    assert len(result.intervals) == 4 * 24 and {d.channel for d in result.days} == {
        "VOICE", "CHAT", "MESSENGER", "EMAIL",
    }  # fmt: skip
    declared = {(i.region, i.channel, i.interval_start_ms): i for i in plan.intervals}
    for i in result.intervals:
        p = declared[(i.region, i.channel, i.interval_start_ms)]
        assert (i.required_agents, i.planned_agents, i.forecast_offered) == (
            p.required_agents, p.planned_agents, p.forecast_offered,
        )  # fmt: skip
    for d in result.days:
        mine = [i for i in result.intervals if i.channel == d.channel]
        assert sum(i.counts.offered for i in mine) == d.counts.offered  # arrivals stop at the span's end
        assert d.counts.answered >= sum(i.counts.answered for i in mine)  # the rest after the end
        assert d.counts.service_level is not None and 0.0 <= d.counts.service_level <= 1.0
        assert d.service_level.verdict in ("met", "MISSED") and d.asa.target is not None
        assert d.planned_agent_hours == sum(i.planned_agents for i in mine) / 4
    voice = next(d for d in result.days if d.channel == "VOICE")
    assert voice.counts.offered > 50 and voice.asa.target == 40.0
    body = json.loads(json.dumps(result.as_dict()))
    assert body["plan_id"] == plan.plan_id and len(body["intervals"]) == 96
    assert {"service_level", "asa_s", "abandonment", "required_agents", "planned_agents"} <= set(
        body["intervals"][0]
    )


def test_evaluate_refuses_days_beyond_the_plan_and_regions_outside_it() -> None:
    plan = erlang_plan(["RU-KGD"], START, days=0.25)
    with pytest.raises(ValueError, match="at most the plan's span"):
        evaluate(plan, days=1)
    with pytest.raises(ValueError, match="RU-MOW"):
        evaluate(plan, regions=["RU-MOW"])
