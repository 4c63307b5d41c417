"""Catalogue, schedule, requirements and forecast of streams/planning (issue 18 items 1-4)."""

from __future__ import annotations

import numpy as np
import pytest

from streams.domain.erlang import agents_for_service_level, agents_for_service_level_a
from streams.planning.catalogue import (
    SLOTS_PER_WEEK,
    CatalogueConfig,
    build_catalogue,
    night_slots,
)
from streams.planning.forecast import WEEK, History, accuracy, mstl_offered, seasonal_naive
from streams.planning.requirements import RequirementModel, default_rules
from streams.planning.schedule import CoverageMatrix, Limits, planned_on_floor, solve_region

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def catalogue():
    return build_catalogue()


def test_default_catalogue_has_50000_variants_and_no_invalid_shift(catalogue) -> None:
    print(f"default catalogue: {catalogue.size:,} variants")
    assert catalogue.size >= 50_000
    cfg = catalogue.config
    for shape in catalogue.shapes:
        hours = shape.length_slots / 4
        assert 4 <= hours <= 12
        for offset, length, _reason in shape.breaks:
            assert 4 <= offset and offset + length <= shape.length_slots - 4  # not in the first/last hour
        spans = sorted((o, o + n) for o, n, _ in shape.breaks)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))  # no overlap
        if night_slots(cfg, shape.start_slot, shape.length_slots) >= cfg.night_min_h * 4:
            assert hours <= cfg.night_max_h
    # a working pattern repeats the start: rest between two working days >= 12 h
    assert all(24 - s.length_slots / 4 >= 12 for s in catalogue.shapes)


def test_variant_becomes_utc_assignments_with_breaks_inside(catalogue) -> None:
    j = 12_345
    shifts = catalogue.to_assignments(j, 3, "RU-MOW", "VOICE", week_start_ms=0)
    assert len(shifts) == int(catalogue.pattern_days[catalogue.pattern_of[j]].sum())
    floor = sum(s.on_floor(t * 900_000) for s in shifts for t in range(SLOTS_PER_WEEK + 96))
    assert floor == catalogue.covered_slots(j).size  # the week's slots, as the schedule counts them


def _tiny_catalogue():
    # starts every 4 h, 8 h shifts only, 5/2 patterns only: hand-computable instances
    cfg = CatalogueConfig(start_step_slots=16, lengths_h=(8,), lunch_choices=(0,), patterns={"5/2": []})
    from streams.planning.catalogue import _rotations

    cfg.patterns["5/2"] = _rotations(5, 2)
    return build_catalogue(cfg)


def test_schedule_known_optimum_one_agent_per_slot() -> None:
    cat = _tiny_catalogue()
    cover = CoverageMatrix(cat)
    # need 1 agent during local Monday 08:00-09:00 only: one 8 h shift on a 5-day pattern = 40 h
    demand = np.zeros(SLOTS_PER_WEEK, dtype=int)
    demand[32:36] = 1
    result = solve_region("RU-MOW", {"VOICE": demand}, cover, Limits())
    assert result.paid_hours == pytest.approx(40.0)
    assert result.under_slots == 0
    assert result.lp_bound == pytest.approx(40.0, rel=1e-6)
    assert result.gap == pytest.approx(0.0, abs=1e-6)
    assert (planned_on_floor(result, cover, "VOICE") >= demand).all()


def test_schedule_cap_moves_shortfall_to_under_coverage() -> None:
    cat = _tiny_catalogue()
    cover = CoverageMatrix(cat)
    demand = np.zeros(SLOTS_PER_WEEK, dtype=int)
    demand[32:36] = 3
    result = solve_region("RU-MOW", {"VOICE": demand}, cover, Limits(headcount_cap=2))
    assert result.headcount == 2
    assert result.under["VOICE"][32:36].tolist() == [1, 1, 1, 1]
    assert result.under_slots == 4


@pytest.mark.parametrize("offered", [5.0, 60.0, 400.0])
def test_requirements_equal_erlang_a_and_c(offered: float) -> None:
    model = RequirementModel(default_rules(), shrinkage=0.0)
    rule = default_rules()["VOICE"]
    load = offered * 140.0 / 900.0
    grid = 1.02 ** round(np.log(load) / np.log(1.02))
    expected = agents_for_service_level_a(grid, 140.0, rule.patience_s, rule.threshold_s, 0.8, 0.9)
    assert model.on_floor("VOICE", offered, 140.0) == max(1, expected)
    email_load = 1.02 ** round(np.log(offered * 300.0 / 900.0) / np.log(1.02))
    email = agents_for_service_level(email_load, 300.0, 86_400.0, 0.8, 0.9)
    assert model.on_floor("EMAIL", offered, 300.0) == max(1, email)


def test_chat_divides_slots_by_concurrency_and_shrinkage_scales_up() -> None:
    model = RequirementModel(default_rules(), shrinkage=0.25)
    rule = default_rules()["CHAT"]
    assert rule.concurrency == 2
    load = 100 * 420 / 900
    grid = 1.02 ** round(np.log(load) / np.log(1.02))
    slots = agents_for_service_level_a(grid, 420.0, rule.patience_s, rule.threshold_s, 0.8, 0.9)
    assert model.on_floor("CHAT", 100, 420.0) == -(-slots // 2)
    assert model.scheduled(9) == 12


def _synthetic(weeks: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(weeks * WEEK)
    daily = 20 + 15 * np.sin(2 * np.pi * (t % 96) / 96)
    weekly = np.where((t // 96) % 7 >= 5, 0.7, 1.0)
    return rng.poisson(daily * weekly).astype(float)


def test_forecast_on_a_seasonal_series_beats_or_equals_naive() -> None:
    y = _synthetic(4, seed=3)
    key = ("RU-MOW", "VOICE")
    train = History(0, 3 * WEEK, {key: y[: 3 * WEEK]}, {key: y[: 3 * WEEK]}, {key: y[: 3 * WEEK] * 140})
    actual = {key: y[3 * WEEK :]}
    naive = accuracy(seasonal_naive(train, WEEK), actual)["VOICE"][0]
    model = accuracy(mstl_offered(train, WEEK), actual)["VOICE"][0]
    assert model <= naive
