"""The file backfill with decoding spread over worker processes stores exactly what the
single-process backfill stores, on both HistoryStore adapters: every message once, the
same dead letters at the same positions, the same KPI minute buckets."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from streams.history.chdb_store import ChdbStore
from streams.history.clickhouse_store import ClickHouseDriverStore
from streams.history.migrate import migrate
from streams.history.parallel_backfill import backfill_file
from streams.history.store import HistoryStore
from streams.services.clickhouse import ClickHouseServer
from streams.simulator import Faults, run
from streams.simulator.run import DEFAULT_START

pytestmark = [pytest.mark.contract, pytest.mark.clickhouse]

_SNAPSHOT = {
    # DISTINCT: duplicated messages collapse whenever ReplacingMergeTree merges, which differs per run
    "contact_events": "SELECT DISTINCT event_id, type, region, event_time, event_time_ms FROM {t}",
    "agent_events": "SELECT DISTINCT event_id, state, skills, languages, event_time FROM {t}",
    "survey_events": "SELECT DISTINCT event_id, score FROM {t}",
    "dead_letters": "SELECT original_offset, reason, original_value_b64 FROM {t}",
    "kpi_minute": "SELECT region, channel, bucket_start, offered, answered, abandoned, total_wait_ms, "
    "talk_ms, surveys FROM {t}",
}


@pytest.fixture(scope="module")
def sim_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("backfill") / "sim.bin"
    faults = Faults(duplicate=0.01, malformed=0.005)
    run(regions=("RU-MOW", "RU-KAM", "RU-PRI"), duration_s=2 * 3600, seed=9, out="file", path=path,
        start=DEFAULT_START + timedelta(hours=6), faults=faults)  # fmt: skip
    return path


def _contents(store: HistoryStore) -> dict[str, list[tuple[object, ...]]]:
    out = {}
    for table, sql in _SNAPSHOT.items():
        out[table] = sorted(store.query(sql.format(t=f"{store.database}.{table}")), key=repr)
    return out


def _stores(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[HistoryStore, HistoryStore]:
    names = [f"t_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    if kind == "chdb":
        return ChdbStore(tmp_path / "chdb", names[0]), ChdbStore(tmp_path / "chdb", names[1])
    server: ClickHouseServer = request.getfixturevalue("clickhouse_server")
    return tuple(ClickHouseDriverStore(server.host, server.tcp_port, name) for name in names)  # type: ignore[return-value]


@pytest.mark.parametrize("kind", ["clickhouse-18.16", "chdb"])
def test_two_workers_store_what_one_stores(
    kind: str, sim_file: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    one, two = _stores(kind, tmp_path, request)
    try:
        for store in (one, two):
            migrate(store)
        seen: list[int] = []
        single = backfill_file(one, sim_file, workers=1)
        parallel = backfill_file(two, sim_file, workers=2, batch_rows=5_000, on_progress=seen.append)
        assert parallel.messages == single.messages > 10_000
        assert parallel.dead_letters == single.dead_letters > 0
        assert parallel.rows == single.rows
        assert parallel.kpi_buckets == single.kpi_buckets > 0
        assert seen and seen[-1] == parallel.messages  # progress reached the end
        assert _contents(two) == _contents(one)
    finally:
        one.close()
        two.close()
