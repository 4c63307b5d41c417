"""History agrees with real time to the event: the KPI minute buckets computed in SQL
(streams/history/kpi_sql.py) on ClickHouse 18.16 and on chdb equal the domain aggregators'
(streams/domain/intervals.py, the streaming path) for the same simulated traffic,
with duplicated and late events, counter by counter."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from streams.domain.events import ContactEvent, SurveyEvent
from streams.domain.intervals import ContactProgress, step, survey_delta
from streams.domain.kpi import COUNTERS, add, initialize
from streams.history import kpi_sql
from streams.history.kpi_sql import recompute_kpi_minutes
from streams.history.migrate import migrate
from streams.history.rows import CONTACT_COLUMNS, SURVEY_COLUMNS, contact_row, survey_row
from streams.history.store import HistoryStore
from streams.simulator import SimConfig, Simulation
from streams.simulator.config import Faults
from streams.simulator.output import materialise
from streams.simulator.run import DEFAULT_START

pytestmark = [pytest.mark.contract, pytest.mark.clickhouse]

INGESTED = datetime(2026, 11, 24, tzinfo=UTC)


def simulated_events() -> list[ContactEvent | SurveyEvent]:
    sim = Simulation(
        SimConfig(regions=("RU-MOW", "RU-PRI", "RU-KAM"), faults=Faults(duplicate=0.03, late=0.03)),
        seed=7,
        start=DEFAULT_START + timedelta(hours=6),
        duration_s=2 * 3600,
    )
    events = []
    for batch in sim.batches():
        for item in batch:
            event = materialise(item, sim.prefix).event
            if isinstance(event, ContactEvent | SurveyEvent):
                events.append(event)
    return events


def domain_buckets(events: list[ContactEvent | SurveyEvent]) -> dict[tuple[str, str, int], dict[str, int]]:
    progress: dict[str, ContactProgress] = {}
    seen_surveys: set[str] = set()
    buckets: dict[tuple[str, str, int], dict[str, int]] = defaultdict(initialize)
    for event in events:
        if isinstance(event, ContactEvent):
            progress[event.contact_id], deltas = step(progress.get(event.contact_id), event)
        elif event.event_id not in seen_surveys:
            seen_surveys.add(event.event_id)
            deltas = [survey_delta(event)]
        else:
            deltas = []
        for (region, channel, minute), delta in deltas:
            key = (region, channel.value, minute)
            buckets[key] = add(buckets[key], delta)
    return {k: b for k, b in buckets.items() if any(b.values())}


@pytest.mark.parametrize("pieces", ["whole", "sliced"])
def test_sql_buckets_equal_streaming_buckets(
    history_store: HistoryStore, pieces: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sliced``: the recompute in 5+ hash slices of contacts and 20-minute windows of fact
    times (a month's pieces, made small) gives the same buckets as in one piece."""
    if pieces == "sliced":
        monkeypatch.setattr(kpi_sql, "CONTACTS_PER_SLICE", 300)
        monkeypatch.setattr(kpi_sql, "WINDOW_MS", 20 * 60_000)
    events = simulated_events()
    contacts = [e for e in events if isinstance(e, ContactEvent)]
    assert len(contacts) > 5_000
    assert len({e.event_id for e in contacts}) < len(contacts), "the traffic should contain duplicates"
    late = sum(1 for a, b in zip(contacts, contacts[1:], strict=False) if b.event_time_ms < a.event_time_ms)
    assert late > 0, "the traffic should contain late events"

    store = history_store
    migrate(store)
    db = store.database
    store.insert(
        f"{db}.contact_events",
        CONTACT_COLUMNS,
        [contact_row(e, 0, i, INGESTED) for i, e in enumerate(contacts)],
    )
    surveys = [e for e in events if isinstance(e, SurveyEvent)]
    store.insert(
        f"{db}.survey_events", SURVEY_COLUMNS, [survey_row(e, 0, i, INGESTED) for i, e in enumerate(surveys)]
    )
    assert recompute_kpi_minutes(store, version=1) > 100

    rows = store.query(
        "SELECT region, toString(channel), toInt64(toUnixTimestamp(bucket_start)) * 1000, "
        f"{', '.join(COUNTERS)} FROM {db}.kpi_minute WHERE version = 1"
    )
    from_sql = {(r[0], r[1], int(r[2])): dict(zip(COUNTERS, map(int, r[3:]), strict=True)) for r in rows}
    expected = domain_buckets(events)
    assert set(from_sql) == set(expected)
    different = {k: (from_sql[k], expected[k]) for k in expected if from_sql[k] != expected[k]}
    assert not different, list(different.items())[:2]
    assert sum(b["offered"] for b in expected.values()) > 1_000
    assert store.query(f"SELECT count() FROM {db}.kpi_contact_stage") == [(0,)]  # the stage is cleaned up
