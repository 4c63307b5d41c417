"""History agrees with real time to the event: the KPI minute buckets computed in SQL
(streams/history/kpi_sql.py) on ClickHouse 18.16 and on chdb equal the domain aggregators'
(streams/domain/intervals.py, the streaming path) for the same simulated traffic,
with duplicated and late events, counter by counter."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from streams.domain.events import Channel, ContactEvent, ContactEventType, Resolution, SurveyEvent
from streams.domain.intervals import ContactProgress, step, survey_delta
from streams.domain.kpi import COUNTERS, add, initialize
from streams.history import kpi_sql
from streams.history.event_rows import CONTACT_COLUMNS, SURVEY_COLUMNS, contact_row, survey_row
from streams.history.kpi_sql import recompute_kpi_minutes
from streams.history.migrate import migrate
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


def edge_shape_events(contacts: int = 600, seed: int = 11) -> list[ContactEvent]:
    """Contacts of the shapes DESIGN.md section 3 decides (overflow, transfers, end on hold,
    ENDED after an abandon, answered without a queue), with duplicates, in shuffled order."""
    rng = random.Random(seed)
    start = int(datetime(2026, 11, 24, 9, tzinfo=UTC).timestamp() * 1000)
    T = ContactEventType
    events: list[ContactEvent] = []
    for i in range(contacts):
        cid, t = f"edge-{i}", start + rng.randrange(3_600_000)
        home = rng.choice(("RU-MOW", "RU-SPE", "RU-KGD"))
        shape = rng.choice(("plain", "overflow", "transfers", "end on hold", "abandon then end", "no queue"))
        region = rng.choice(("RU-IRK", "RU-KAM")) if shape == "overflow" else home

        def add(
            kind: ContactEventType,
            at: int,
            n: int = 0,
            where: str | None = None,
            cid: str = cid,
            region: str = region,
            home: str = home,
            **kw: object,
        ) -> None:
            place = where or region
            events.append(
                ContactEvent(
                    event_id=f"{cid}-{kind.value}-{n}", contact_id=cid, type=kind, channel=Channel.VOICE,
                    region=place, queue="general", language="ru", customer_ref="c" * 32,
                    event_time_ms=at, home_region=home if place != home else None, **kw,  # type: ignore[arg-type]
                )
            )  # fmt: skip

        add(T.ARRIVED, t, where=home)
        answered = t + rng.randrange(1_000, 90_000)
        if shape == "abandon then end":
            add(T.QUEUED, t)
            add(T.ABANDONED, answered)
            add(T.ENDED, answered + 5_000, resolution=Resolution.UNRESOLVED)
            continue
        if shape != "no queue":
            add(T.QUEUED, t)
        add(T.ANSWERED, answered)
        ended = answered + rng.randrange(20_000, 300_000)
        if shape in ("end on hold", "transfers"):
            add(T.HOLD_STARTED, answered + 5_000)
            if shape == "transfers":
                add(T.HOLD_ENDED, answered + 15_000)
                add(T.TRANSFERRED, answered + 16_000)
                add(T.TRANSFERRED, answered + 17_000, n=1)
        resolution = Resolution.RESOLVED_FIRST_LINE if rng.random() < 0.9 else Resolution.UNRESOLVED
        add(T.ENDED, ended, resolution=resolution)
        add(T.ACW_ENDED, ended + rng.randrange(1_000, 60_000))
    events += rng.sample(events, len(events) // 20)  # duplicates
    rng.shuffle(events)
    return events


def test_sql_follows_the_stream_on_overflow_transfers_holds_and_abandons(history_store: HistoryStore) -> None:
    """The rules DESIGN.md section 3 added after an independent check: SQL = stream, and the
    rules themselves (nothing in a home region an overflowed contact left, transferred <=
    handled, end-on-hold contacts handled, ENDED after an abandon not counted)."""
    events = edge_shape_events()
    store = history_store
    migrate(store)
    db = store.database
    store.insert(
        f"{db}.contact_events",
        CONTACT_COLUMNS,
        [contact_row(e, 0, i, INGESTED) for i, e in enumerate(events)],
    )
    assert recompute_kpi_minutes(store, version=2) > 10
    rows = store.query(
        "SELECT region, toString(channel), toInt64(toUnixTimestamp(bucket_start)) * 1000, "
        f"{', '.join(COUNTERS)} FROM {db}.kpi_minute WHERE version = 2"
    )
    from_sql = {(r[0], r[1], int(r[2])): dict(zip(COUNTERS, map(int, r[3:]), strict=True)) for r in rows}
    expected = domain_buckets(list(events))
    assert from_sql == expected
    total = {name: sum(b[name] for b in expected.values()) for name in COUNTERS}
    contacts = {e.contact_id for e in events}
    shapes = {kind: {e.contact_id for e in events if e.type is kind} for kind in ContactEventType}
    abandoned, queued = shapes[ContactEventType.ABANDONED], shapes[ContactEventType.QUEUED]
    assert total["handled"] == len(contacts) - len(abandoned)  # end-on-hold and no-queue contacts too
    assert total["ended"] == total["handled"]  # ENDED after an abandon counts nowhere
    assert total["offered"] == len(queued) and total["answered"] == len(queued) - len(abandoned)
    assert total["transferred"] == len(shapes[ContactEventType.TRANSFERRED]) < total["handled"]
    assert all(b["transferred"] <= b["handled"] for b in expected.values())
    queued_in = {e.contact_id: e.region for e in events if e.type is ContactEventType.QUEUED}
    offered_by_region: dict[str, int] = defaultdict(int)
    for key, b in expected.items():
        offered_by_region[key[0]] += b["offered"]
    assert dict(offered_by_region) == {r: list(queued_in.values()).count(r) for r in set(queued_in.values())}
    assert any(e.home_region is not None for e in events)  # overflowed contacts were in the input
