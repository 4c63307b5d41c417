"""Repeat-contact FCR: the SQL of streams/history/fcr_sql.py on ClickHouse 18.16 and chdb
equals the domain rule (streams/domain/fcr.py) on simulated traffic with repeat customers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.domain.events import ContactEvent, ContactEventType
from streams.domain.fcr import ContactArrival, RepeatFcr, repeat_contact_fcr
from streams.history import fcr_sql
from streams.history.event_rows import CONTACT_COLUMNS, contact_row
from streams.history.migrate import migrate
from streams.history.store import HistoryStore
from streams.simulator import SimConfig, Simulation
from streams.simulator.config import Faults
from streams.simulator.output import materialise
from streams.simulator.run import DEFAULT_START

pytestmark = [pytest.mark.contract, pytest.mark.clickhouse]
HOUR = 3_600_000
INGESTED = datetime(2026, 11, 24, tzinfo=UTC)


def arrivals(events: list[ContactEvent]) -> list[ContactArrival]:
    first: dict[str, ContactEvent] = {}
    handled: set[str] = set()
    for e in events:
        if e.type is ContactEventType.ARRIVED and e.contact_id not in first:
            first[e.contact_id] = e
        if e.type is ContactEventType.ACW_ENDED:
            handled.add(e.contact_id)
    return [
        ContactArrival(
            c.contact_id, c.customer_ref, c.region, c.channel.value, c.event_time_ms, cid in handled
        )
        for cid, c in first.items()
    ]


def test_domain_rule_cases() -> None:
    def arrival(cid: str, customer: str, hours: float, handled: bool = True) -> ContactArrival:
        return ContactArrival(cid, customer, "RU-MOW", "VOICE", int(hours * HOUR), handled)

    contacts = [
        arrival("a1", "x", 0), arrival("a2", "x", 30),  # x again after 30 h: a1 repeated, a2 not
        arrival("b1", "y", 1), arrival("b2", "y", 200, handled=False),  # beyond 7 days: b1 resolved
        arrival("c1", "z", 2), arrival("c1", "z", 2),  # a duplicate counts once
        arrival("d1", "w", 300),  # not matured at as_of
    ]  # fmt: skip
    result = repeat_contact_fcr(contacts, as_of_ms=400 * HOUR, horizon_ms=168 * HOUR)
    assert result == {("RU-MOW", "VOICE"): RepeatFcr(matured=4, resolved=3)}
    assert result[("RU-MOW", "VOICE")].ratio == 0.75
    assert repeat_contact_fcr([], as_of_ms=0) == {}


def test_sql_equals_the_domain_rule(history_store: HistoryStore) -> None:
    config = SimConfig(regions=("RU-KAM", "RU-KGD"), faults=Faults(duplicate=0.02), repeat_share=0.3)
    sim = Simulation(config, seed=4, start=DEFAULT_START + timedelta(hours=6), duration_s=6 * 3600)
    events = [
        e for b in sim.batches() for i in b if isinstance(e := materialise(i, sim.prefix).event, ContactEvent)
    ]
    horizon, as_of = 2 * HOUR, sim.start_ms + 5 * HOUR  # a short horizon: repeats within it are common
    expected = repeat_contact_fcr(arrivals(events), as_of, horizon)
    assert sum(v.matured for v in expected.values()) > 200
    assert sum(v.matured - v.resolved for v in expected.values()) > 10, "the traffic should repeat customers"
    migrate(history_store)
    rows = [contact_row(e, 0, i, INGESTED) for i, e in enumerate(events)]
    history_store.insert(f"{history_store.database}.contact_events", CONTACT_COLUMNS, rows)
    assert fcr_sql.repeat_contact_fcr(history_store, as_of, horizon) == expected
