"""The staffing_plan table on both history backends (ClickHouse 18.16 and chdb): a plan
stores and reads back as published; a republished plan replaces its intervals (latest
publication wins, also after a merge), and intervals it does not cover stay."""

from __future__ import annotations

import dataclasses

import pytest

from streams.domain.shift_plan import INTERVAL_MS, PlanInterval
from streams.history.migrate import migrate
from streams.history.store import HistoryStore
from streams.planning.publish import PLAN_TABLE, store_plan, stored_plan

pytestmark = [pytest.mark.contract, pytest.mark.clickhouse]
START = 1_778_490_000_000  # 2026-05-11 09:00 UTC, on a 15-minute boundary


def plan(plan_id: str, planned: int, intervals: int = 4, region: str = "RU-MOW") -> list[PlanInterval]:
    return [
        PlanInterval(plan_id, region, channel, START + i * INTERVAL_MS, 100.0 + i, 140.5, 20.25, planned + i)
        for channel in ("VOICE", "CHAT")
        for i in range(intervals)
    ]


def test_a_plan_reads_back_as_published(history_store: HistoryStore) -> None:
    migrate(history_store)
    first = plan("p1", planned=10) + plan("p1", planned=3, region="RU-KAM")
    assert store_plan(history_store, first, published_at_ms=START - 86_400_000) == len(first)
    key = lambda p: (p.region, p.channel, p.interval_start_ms)  # noqa: E731
    assert sorted(stored_plan(history_store), key=key) == sorted(first, key=key)
    assert sorted(stored_plan(history_store, "RU-KAM"), key=key) == sorted(first[8:], key=key)


def test_a_republished_plan_replaces_its_intervals_only(history_store: HistoryStore) -> None:
    migrate(history_store)
    store_plan(history_store, plan("p1", planned=10), published_at_ms=START - 86_400_000)
    second = [dataclasses.replace(p, plan_id="p2") for p in plan("p2", planned=7, intervals=2)]
    store_plan(history_store, second, published_at_ms=START - 3_600_000)
    # an older publication arriving late (a retried job) does not win either
    store_plan(history_store, plan("p0", planned=99), published_at_ms=START - 2 * 86_400_000)

    def check() -> None:
        stored = stored_plan(history_store)
        got = {(p.channel, p.interval_start_ms): (p.plan_id, p.planned_agents) for p in stored}
        for channel in ("VOICE", "CHAT"):
            assert got[(channel, START)] == ("p2", 7)
            assert got[(channel, START + INTERVAL_MS)] == ("p2", 8)
            assert got[(channel, START + 2 * INTERVAL_MS)] == ("p1", 12)  # not covered by p2
            assert got[(channel, START + 3 * INTERVAL_MS)] == ("p1", 13)

    check()
    history_store.execute(f"OPTIMIZE TABLE {history_store.database}.{PLAN_TABLE} FINAL")
    check()
    rows = history_store.query(f"SELECT count() FROM {history_store.database}.{PLAN_TABLE}")
    assert int(rows[0][0]) == 8  # ReplacingMergeTree kept one row per interval


def test_misaligned_or_negative_intervals_are_refused(history_store: HistoryStore) -> None:
    migrate(history_store)
    with pytest.raises(ValueError, match="15-minute boundary"):
        store_plan(history_store, [PlanInterval("p", "RU-MOW", "VOICE", START + 60_000, 1.0, 1.0, 1.0, 1)], 0)
    with pytest.raises(ValueError, match="negative"):
        store_plan(history_store, [PlanInterval("p", "RU-MOW", "VOICE", START, 1.0, 1.0, 1.0, -1)], 0)
    with pytest.raises(ValueError, match="channel"):
        store_plan(history_store, [PlanInterval("p", "RU-MOW", "PHONE", START, 1.0, 1.0, 1.0, 1)], 0)
