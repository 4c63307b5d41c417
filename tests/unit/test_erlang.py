"""Erlang C / Erlang A: the formulas against pyworkforce, and the simulator against the formulas.

Validation set-up: one region, one voice queue with a fixed number of agents,
stationary Poisson arrivals (flat day, no busyness factor), exponential handle
times, and either no abandonment (Erlang C) or exponential patience (Erlang A).
The measures are computed from the emitted event stream (QUEUED -> ANSWERED /
ABANDONED), not from the engine's bookkeeping, after a 2-hour warm-up.
Tolerances (stated, deterministic seed): P(wait) and SL within 0.03 absolute, ASA
within 10 % relative, abandonment within 0.015 absolute.
"""

from __future__ import annotations

import math
from dataclasses import replace
from types import MappingProxyType

import pytest
from pyworkforce.queuing import ErlangC as PyworkforceErlangC

from streams.domain.erlang import (
    agents_for_service_level,
    asa_c,
    erlang_a,
    erlang_b,
    erlang_c,
    service_level_a,
    service_level_c,
)
from streams.domain.events import Channel, ContactEventType
from streams.domain.regions import get_region
from streams.simulator.config import (
    DEFAULT_CHANNELS,
    FLAT_DOW,
    FLAT_HOURLY_SHAPE,
    MONTH_DAYS,
    HandleTime,
    SimConfig,
)
from streams.simulator.model import CONTACT
from streams.simulator.run import Simulation

pytestmark = pytest.mark.unit

AHT, T = 140.0, 40.0
WARM_UP_MS = 2 * 3_600_000


@pytest.mark.parametrize(("n", "a"), [(1, 0.5), (10, 8.0), (11, 8.0), (30, 24.0), (120, 110.0)])
def test_erlang_c_agrees_with_pyworkforce(n: int, a: float) -> None:
    # pyworkforce: transactions per interval (minutes), aht and target time in minutes
    reference = PyworkforceErlangC(transactions=a / AHT * 1800, aht=AHT / 60, asa=T / 60, interval=30)
    assert erlang_c(n, a) == pytest.approx(reference.waiting_probability(n), rel=1e-9)
    assert service_level_c(n, a, AHT, T) == pytest.approx(reference.service_level(n), rel=1e-9)


def test_erlang_b_and_c_known_values() -> None:
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang_b(2, 1.0) == pytest.approx(0.2)
    # M/M/1: P(wait) = rho, ASA = rho / (1 - rho) * aht
    assert erlang_c(1, 0.5) == pytest.approx(0.5)
    assert asa_c(1, 0.5, 100.0) == pytest.approx(100.0)
    assert erlang_c(3, 3.0) == 1.0 and math.isinf(asa_c(3, 3.0, 100.0))


def test_agents_for_service_level_is_the_smallest_sufficient_n() -> None:
    n = agents_for_service_level(24.0, AHT, T, 0.8)
    assert service_level_c(n, 24.0, AHT, T) >= 0.8 > service_level_c(n - 1, 24.0, AHT, T)
    assert agents_for_service_level(24.0, AHT, T, 0.8, max_occupancy=0.7) == math.ceil(24.0 / 0.7)
    assert agents_for_service_level(0.0, AHT, T, 0.8) == 0


def test_erlang_a_tends_to_erlang_c_without_abandonment() -> None:
    slow = erlang_a(10, 8.0 / AHT, AHT, patience=1e9)
    assert slow.p_wait == pytest.approx(erlang_c(10, 8.0), abs=1e-5)
    assert slow.mean_wait == pytest.approx(asa_c(10, 8.0, AHT), rel=1e-4)
    assert service_level_a(10, 8.0 / AHT, AHT, 1e9, T) == pytest.approx(
        service_level_c(10, 8.0, AHT, T), abs=1e-4
    )


def test_erlang_a_is_stable_when_overloaded() -> None:
    # more load than agents: Erlang C has no steady state, Erlang A does
    result = erlang_a(10, 12.0 / AHT, AHT, patience=180.0)
    assert 0.1 < result.p_abandon < 0.5
    assert result.p_wait < 1.0 and 0.9 < result.occupancy <= 1.0


def validation_config(agents: int, load: float, patience_s: float | None) -> SimConfig:
    region = get_region("RU-MOW")
    per_day = load / AHT * 86_400
    voice = replace(
        DEFAULT_CHANNELS[Channel.VOICE],
        share=1.0,
        handle=HandleTime(AHT, cv=1.0, distribution="exponential", acw_share=0.0),
        patience_mean_s=patience_s,
    )
    return SimConfig(
        regions=(region.code,),
        contacts_per_month=per_day * MONTH_DAYS / region.weight,
        channels=MappingProxyType({Channel.VOICE: voice}),
        hourly_shape=FLAT_HOURLY_SHAPE,
        dow_factors=FLAT_DOW,
        dispersion=None,
        fixed_agents=MappingProxyType({"voice": agents}),
        short_abandon_share=0.0,
    )


def measured(config: SimConfig, days: float, seed: int) -> dict[str, float]:
    sim = Simulation(config, seed=seed, duration_s=days * 86_400)
    queued: dict[str, int] = {}
    waits: list[int] = []
    abandoned = 0
    for batch in sim.batches():
        for t, _, kind, contact, etype, _b in batch:
            if kind != CONTACT or t < sim.start_ms + WARM_UP_MS and etype is ContactEventType.QUEUED:
                continue
            if etype is ContactEventType.QUEUED:
                queued[contact.contact_id] = t
            elif etype is ContactEventType.ANSWERED and contact.contact_id in queued:
                waits.append(t - queued[contact.contact_id])
            elif etype is ContactEventType.ABANDONED and contact.contact_id in queued:
                abandoned += 1
    offered = len(waits) + abandoned
    assert offered > 50_000
    return {
        "offered": offered,
        "p_wait": (sum(w > 0 for w in waits) + abandoned) / offered,  # every abandon waited
        "service_level": sum(w <= T * 1000 for w in waits) / offered,
        "asa": sum(waits) / len(waits) / 1000,
        "abandonment": abandoned / offered,
    }


def test_simulated_queue_agrees_with_erlang_c() -> None:
    n, a = 11, 8.0
    result = measured(validation_config(n, a, None), days=25, seed=11)
    assert result["abandonment"] == 0.0
    assert result["p_wait"] == pytest.approx(erlang_c(n, a), abs=0.03)
    assert result["service_level"] == pytest.approx(service_level_c(n, a, AHT, T), abs=0.03)
    assert result["asa"] == pytest.approx(asa_c(n, a, AHT), rel=0.10)


def test_simulated_abandonment_agrees_with_erlang_a() -> None:
    n, a, patience = 10, 10.0, 180.0
    expected = erlang_a(n, a / AHT, AHT, patience)
    result = measured(validation_config(n, a, patience), days=20, seed=12)
    assert expected.p_abandon > 0.05  # the check is not vacuous
    assert result["abandonment"] == pytest.approx(expected.p_abandon, abs=0.015)
    assert result["p_wait"] == pytest.approx(expected.p_wait, abs=0.03)
    assert result["service_level"] == pytest.approx(service_level_a(n, a / AHT, AHT, patience, T), abs=0.03)


@pytest.mark.parametrize(("a", "patience"), [(0.5, 120.0), (8.0, 180.0), (24.0, 120.0), (60.0, 300.0)])
def test_erlang_a_sizing_is_the_smallest_meeting_the_target(a: float, patience: float) -> None:
    from streams.domain.erlang import agents_for_service_level_a

    rate = a / AHT
    n = agents_for_service_level_a(a, AHT, patience, T, 0.8, max_occupancy=0.95)
    assert service_level_a(n, rate, AHT, patience, T) >= 0.8
    assert erlang_a(n, rate, AHT, patience).occupancy <= 0.95
    if n > 1:
        below = service_level_a(n - 1, rate, AHT, patience, T) < 0.8
        assert below or erlang_a(n - 1, rate, AHT, patience).occupancy > 0.95
    # patience shortens queues: Erlang A never needs more agents than Erlang C here
    assert n <= agents_for_service_level(a, AHT, T, 0.8, max_occupancy=0.95)
    assert agents_for_service_level_a(0.0, AHT, patience, T, 0.8) == 0
