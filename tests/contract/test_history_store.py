"""One contract suite for both HistoryStore adapters: Debian's ClickHouse 18.16 server
(clickhouse-driver, native protocol) and chdb (embedded, current ClickHouse). The same
migrations must apply unchanged on both, and rows must come back identically."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams.domain.events import AgentEvent, AgentState
from streams.history.chdb_store import ChdbStore
from streams.history.event_rows import AGENT_COLUMNS, agent_row
from streams.history.migrate import Migration, load_migrations, migrate
from streams.history.store import HistoryError, HistoryStore

pytestmark = [pytest.mark.contract, pytest.mark.clickhouse]

TABLES = {
    "contact_events",
    "agent_events",
    "survey_events",
    "dead_letters",
    "routing_decisions",
    "kpi_minute",
    "staffing_plan",
}
T0 = datetime(2026, 11, 24, 9, 30, 5, tzinfo=UTC)


@pytest.fixture
def store(history_store: HistoryStore) -> HistoryStore:
    return history_store


def contact_row(event_id: str, region: str = "RU-MOW", ms: int = 0) -> tuple[object, ...]:
    return (
        event_id, "c-1", "ANSWERED", "VOICE", "", region, "billing", "ru", "STANDARD", 0,
        "0" * 32, "a-7", "", "", "", T0, int(T0.timestamp() * 1000) + ms, 3, 42, T0,
    )  # fmt: skip


CONTACT_COLUMNS = [
    "event_id", "contact_id", "type", "channel", "platform", "region", "queue", "language", "segment",
    "priority", "customer_ref", "agent_id", "resolution", "reason_code", "home_region", "event_time",
    "event_time_ms", "kafka_partition", "kafka_offset", "ingested_at",
]  # fmt: skip


def test_migrations_apply_once_and_create_every_table(store: HistoryStore) -> None:
    first = migrate(store)
    assert [r.status for r in first] == ["applied"] * len(load_migrations())
    second = migrate(store)
    assert [r.status for r in second] == ["already applied"] * len(load_migrations())
    tables = {
        r[0] for r in store.query(f"SELECT name FROM system.tables WHERE database = '{store.database}'")
    }
    assert TABLES | {"schema_migrations"} <= tables


def test_an_edited_migration_is_refused(store: HistoryStore) -> None:
    migrate(store)
    edited = [Migration(m.version, m.name, m.sql + "\n-- edited") for m in load_migrations()]
    with pytest.raises(HistoryError, match="changed after it was applied"):
        migrate(store, edited)


def test_rows_round_trip_with_the_same_python_values(store: HistoryStore) -> None:
    migrate(store)
    table = f"{store.database}.contact_events"
    assert store.insert(table, CONTACT_COLUMNS, [contact_row("e-1"), contact_row("e-2", "RU-KAM", 7)]) == 2
    rows = store.query(
        f"SELECT event_id, type, region, priority, event_time, event_time_ms, kafka_offset "
        f"FROM {table} ORDER BY event_id"
    )
    ms = int(T0.timestamp() * 1000)
    assert rows == [
        ("e-1", "ANSWERED", "RU-MOW", 0, T0, ms, 42),
        ("e-2", "ANSWERED", "RU-KAM", 0, T0, ms + 7, 42),
    ]


def test_arrays_and_quotes_survive(store: HistoryStore) -> None:
    migrate(store)
    table = f"{store.database}.agent_events"
    columns = ["event_id", "agent_id", "region", "state", "skills", "languages", "chat_concurrency",
               "event_time", "event_time_ms", "kafka_partition", "kafka_offset", "ingested_at"]  # fmt: skip
    store.insert(table, columns, [("e'1", 'a"7', "RU-PRI", "READY", ["billing", "tech"], ["ru", "zh"], 3,
                                   T0, 0, 0, 0, T0)])  # fmt: skip
    assert store.query(f"SELECT event_id, agent_id, skills, languages FROM {table}") == [
        ("e'1", 'a"7', ["billing", "tech"], ["ru", "zh"])
    ]


def test_agent_rows_keep_the_not_ready_reason(store: HistoryStore) -> None:
    """What the sink writes for cc.agent.events (schema 104): the NOT_READY reason code, ''
    where there is none (other states, events of schema 102)."""
    migrate(store)
    ms = int(T0.timestamp()) * 1000
    lunch = AgentEvent("e-1", "a-1", "RU-KGD", AgentState.NOT_READY, ms, ("general",), ("ru",), 1, "LUNCH")
    ready = AgentEvent("e-2", "a-1", "RU-KGD", AgentState.READY, ms + 1, ("general",), ("ru",), 1)
    rows = [agent_row(e, 0, i, ms // 1000) for i, e in enumerate((lunch, ready))]
    store.insert(f"{store.database}.agent_events", AGENT_COLUMNS, rows)
    query = f"SELECT event_id, state, reason FROM {store.database}.agent_events ORDER BY event_id"
    assert store.query(query) == [("e-1", "NOT_READY", "LUNCH"), ("e-2", "READY", "")]


def test_csv_hostile_strings_and_int_seconds_survive(store: HistoryStore) -> None:
    """Spaces at the ends, commas, quotes, backslashes, newlines and tabs, in strings and in
    arrays; DateTime given as epoch seconds (what history rows carry) reads back as T0."""
    migrate(store)
    table = f"{store.database}.agent_events"
    columns = ["event_id", "agent_id", "region", "state", "skills", "languages", "chat_concurrency",
               "event_time", "event_time_ms", "kafka_partition", "kafka_offset", "ingested_at"]  # fmt: skip
    nasty = ' a,b "c"\\d\n\te '
    seconds = int(T0.timestamp())
    store.insert(table, columns, [("e-1", nasty, "RU-PRI", "READY", [nasty, "x'y\\z"], [], 1,
                                   seconds, 0, 0, 0, seconds)])  # fmt: skip
    assert store.query(f"SELECT agent_id, skills, languages, event_time, ingested_at FROM {table}") == [
        (nasty, [nasty, "x'y\\z"], [], T0, T0)
    ]


def test_replayed_rows_count_once_with_uniq_exact(store: HistoryStore) -> None:
    migrate(store)
    table = f"{store.database}.contact_events"
    batch = [contact_row(f"e-{i}") for i in range(100)]
    store.insert(table, CONTACT_COLUMNS, batch)
    store.insert(table, CONTACT_COLUMNS, batch)  # a retried batch
    assert store.query(f"SELECT count(), uniqExact(event_id) FROM {table}") == [(200, 100)]
    store.execute(f"OPTIMIZE TABLE {table} FINAL")
    assert store.query(f"SELECT count() FROM {table}") == [(100,)]


def test_day_partitions_can_be_dropped(store: HistoryStore) -> None:
    migrate(store)
    table = f"{store.database}.contact_events"
    store.insert(table, CONTACT_COLUMNS, [contact_row("e-1")])
    partitions = store.query(
        f"SELECT DISTINCT partition FROM system.parts WHERE database = '{store.database}' "
        "AND table = 'contact_events' AND active"
    )
    assert partitions == [("20261124",)]
    store.execute(f"ALTER TABLE {table} DROP PARTITION 20261124")
    assert store.query(f"SELECT count() FROM {table}") == [(0,)]


def test_naive_datetimes_are_refused(store: HistoryStore) -> None:
    migrate(store)
    row = list(contact_row("e-1"))
    row[15] = datetime(2026, 11, 24, 9, 30)  # noqa: DTZ001 - the point of the test
    with pytest.raises(HistoryError, match="naive datetime"):
        store.insert(f"{store.database}.contact_events", CONTACT_COLUMNS, [tuple(row)])


def test_bad_sql_is_a_history_error(store: HistoryStore) -> None:
    with pytest.raises(HistoryError):
        store.query("SELECT * FROM no_such_table_anywhere")


def test_versions(store: HistoryStore) -> None:
    version = store.server_version()
    assert version.startswith("18.16") if store.backend == "clickhouse" else int(version.split(".")[0]) >= 24


@pytest.mark.parametrize("name", ["ccpulse; DROP TABLE x", "a-b", "", "1abc", "x" * 65])
def test_database_names_must_be_plain_identifiers(name: str, tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="plain identifier"):
        ChdbStore(tmp_path / "chdb", database=name)


def test_retention_drops_only_old_day_partitions(store: HistoryStore) -> None:
    from datetime import date, timedelta

    from streams.history.retention import drop_old_partitions, partitions

    migrate(store)
    table = f"{store.database}.contact_events"
    days = [T0 - timedelta(days=d) for d in (0, 1, 30, 31, 45)]
    rows = []
    for i, day in enumerate(days):
        row = list(contact_row(f"e-{i}"))
        row[15], row[16] = day, int(day.timestamp() * 1000)
        rows.append(tuple(row))
    store.insert(table, CONTACT_COLUMNS, rows)
    today = date(2026, 11, 24)
    planned = drop_old_partitions(store, today, {"contact_events": 30}, dry_run=True)
    assert sorted(p.partition for p in planned) == ["20261010", "20261024"]
    assert len(partitions(store, "contact_events")) == 5  # dry run changed nothing
    dropped = drop_old_partitions(store, today, {"contact_events": 30, "kpi_minute": None})
    assert [(p.partition, p.rows) for p in sorted(dropped, key=lambda p: p.partition)] == [
        ("20261010", 1),
        ("20261024", 1),
    ]
    assert sorted(partitions(store, "contact_events")) == ["20261025", "20261123", "20261124"]
    with pytest.raises(ValueError, match="expected >= 1"):
        drop_old_partitions(store, today, {"contact_events": 0})
