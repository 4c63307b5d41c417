"""Ground-truth KPIs per region x channel x minute: complete, final when handed out, and equal
to the engine's own totals and to what the emitted events say."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from streams.domain.events import Channel, ContactEvent, ContactEventType, SurveyEvent
from streams.simulator import SimConfig, Simulation, run
from streams.simulator.output import materialise
from streams.simulator.run import DEFAULT_START
from streams.simulator.truth import COLUMNS, MINUTE_MS, MinuteKpi

pytestmark = pytest.mark.unit

PEAK = DEFAULT_START + timedelta(hours=6)
REGIONS = ("RU-MOW", "RU-PRI", "RU-KAM")


@pytest.fixture(scope="module")
def observed() -> tuple[list[list[MinuteKpi]], list, Simulation]:
    handed_out: list[list[MinuteKpi]] = []
    sim = Simulation(
        SimConfig(regions=REGIONS), seed=4, start=PEAK, duration_s=3 * 3600, on_truth=handed_out.append
    )
    records = [materialise(item, sim.prefix) for batch in sim.batches() for item in batch]
    return handed_out, records, sim


def test_minutes_are_handed_out_once_and_only_when_final(observed: tuple) -> None:
    handed_out, records, _ = observed
    offered: dict[tuple[int, str, str], int] = {}
    for group in handed_out:
        for m in group:
            key = (m.minute_ms, m.region, m.channel)
            # a minute handed out before it was final would come back a second time
            assert key not in offered
            offered[key] = m.offered
    assert len(offered) > 3 * 60 * len(REGIONS)  # most region x channel x minute cells have traffic
    from_events = Counter(
        (r.timestamp_ms - r.timestamp_ms % MINUTE_MS, r.event.region, r.event.channel.value)
        for r in records
        if isinstance(r.event, ContactEvent) and r.event.type is ContactEventType.QUEUED
    )
    assert {k: v for k, v in offered.items() if v} == dict(from_events)


def test_totals_equal_the_engine_and_the_events(observed: tuple) -> None:
    handed_out, records, sim = observed
    minutes = [m for group in handed_out for m in group]
    totals = Counter()
    for m in minutes:
        for name in (
            "offered",
            "answered",
            "answered_within_target",
            "abandoned",
            "short_abandoned",
            "handled",
        ):
            totals[name] += getattr(m, name)
    engine = sim.engine.truth.values()
    assert totals["offered"] == sum(t.offered for t in engine)
    assert totals["answered"] == sum(t.answered for t in engine)
    assert totals["answered_within_target"] == sum(t.answered_within_target for t in engine)
    assert totals["abandoned"] + totals["short_abandoned"] == sum(t.abandoned for t in engine)
    contact_types = Counter(r.event.type for r in records if isinstance(r.event, ContactEvent))
    assert totals["handled"] == contact_types[ContactEventType.ACW_ENDED]
    assert totals["short_abandoned"] > 0 and totals["abandoned"] > 0
    assert sum(m.surveys for m in minutes) == sum(isinstance(r.event, SurveyEvent) for r in records)


def test_voice_handle_time_parts_add_up_to_the_published_aht(observed: tuple) -> None:
    handed_out, _, _ = observed
    voice = [m for group in handed_out for m in group if m.channel == Channel.VOICE.value]
    handled = sum(m.handled for m in voice)
    aht_s = sum(m.talk_ms + m.hold_ms + m.acw_ms for m in voice) / handled / 1000
    assert aht_s == pytest.approx(140, rel=0.06)
    assert 0 < sum(m.hold_ms for m in voice) < sum(m.talk_ms for m in voice)
    assert sum(m.acw_ms for m in voice) / 1000 / handled == pytest.approx(0.15 * aht_s, rel=0.05)
    served = [m for m in voice if m.service_level is not None]
    assert all(0.0 <= m.service_level <= 1.0 for m in served)


def test_run_writes_the_truth_csv(tmp_path: Path) -> None:
    truth = tmp_path / "truth.csv"
    summary = run(
        regions=("RU-KAM",), duration_s=3600, seed=1, path=tmp_path / "s.bin", start=PEAK, truth_path=truth
    )
    with truth.open() as f:
        rows = list(csv.DictReader(f))
    assert rows and tuple(rows[0]) == COLUMNS
    assert sum(int(r["offered"]) for r in rows) == summary.contacts
