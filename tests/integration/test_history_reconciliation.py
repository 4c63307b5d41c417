"""History agrees with real time to the event: a simulated day with faults through real Apache Kafka
-> KPI worker -> history sink -> ClickHouse (18.16 and chdb). The KPIs recomputed in SQL from the
raw events equal the streamed MINUTE snapshots stored in kpi_minute_stream and the simulator's
ground truth, per region x channel x minute; every distinct event is stored."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from support.workers import read_truth, simulate  # the same simulated day and truth reader

from streams.domain.regions import region_codes
from streams.history.event_rows import STREAM_KPI_COUNTERS
from streams.history.kpi_sql import kpi_minute_select
from streams.history.migrate import migrate
from streams.history.sink import HistorySink
from streams.history.store import HistoryStore
from streams.jobs.worker import KpiWorker, WorkerOptions
from streams.wire.codec import Codec

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def test_sql_from_raw_equals_streamed_snapshots_and_truth(
    fresh_kafka: Any, history_stores: list[HistoryStore], tmp_path: Path
) -> None:
    """One simulated day and one worker run; each store (18.16, chdb) sinks it and is held to
    the same assertions."""
    bootstrap = fresh_kafka.bootstrap_servers
    summary = simulate(bootstrap, tmp_path / "truth.csv", hours=24)
    codec = Codec.pinned(known_regions=region_codes())
    worker = KpiWorker({"bootstrap.servers": bootstrap}, codec, WorkerOptions(routing=False))
    assert worker.run(threading.Event(), idle_exit_s=4.0).events == summary.messages
    truth = read_truth(tmp_path / "truth.csv")
    for history_store in history_stores:
        assert_history_equals_stream_and_truth(history_store, bootstrap, codec, summary.malformed, truth)


def assert_history_equals_stream_and_truth(
    history_store: HistoryStore, bootstrap: str, codec: Codec, malformed: int,
    truth: dict[str, dict[str, int]],
) -> None:  # fmt: skip
    backend = history_store.backend
    migrate(history_store)
    config = {"bootstrap.servers": bootstrap, "group.id": f"history-{backend}", "session.timeout.ms": 6000}
    stats = HistorySink(config, history_store, codec, max_wait_s=0.5).run(threading.Event(), idle_exit_s=5.0)
    assert stats.skipped_invalid == malformed, backend

    db = history_store.database
    ((rows, distinct),) = history_store.query(
        f"SELECT count(), uniqExact(event_id) FROM {db}.contact_events"  # noqa: S608
    )
    assert int(rows) >= int(distinct) > 10_000, backend  # duplicates stored or collapsed; counted once
    fields = STREAM_KPI_COUNTERS
    sql = {
        (str(r[0]), str(r[1]), int(r[2])): dict(zip(fields, map(int, r[3:]), strict=True))
        for r in history_store.query(
            f"SELECT region, toString(channel), bucket, {', '.join(fields)} FROM ({kpi_minute_select(db)})"  # noqa: S608
        )
    }
    latest = ", ".join(f"argMax({f}, version)" for f in fields)
    streamed = {
        (str(r[0]), str(r[1]), int(r[2])): dict(zip(fields, map(int, r[3:]), strict=True))
        for r in history_store.query(
            f"SELECT region, toString(channel), toInt64(toUnixTimestamp(bucket_start)) * 1000, {latest} "  # noqa: S608
            f"FROM {db}.kpi_minute_stream GROUP BY region, channel, bucket_start"
        )
    }
    nonzero = {k: v for k, v in sql.items() if any(v.values())}
    assert len(nonzero) > 1_000, backend
    assert {k: v for k, v in streamed.items() if any(v.values())} == nonzero, backend
    for key, counters in nonzero.items():
        expected = truth[f"{key[0]}|{key[1]}|MINUTE|{key[2]}"]
        abandoned = counters["abandoned"] - counters["short_abandoned"]  # truth counts them apart
        assert {**counters, "abandoned": abandoned} == {f: expected[f] for f in fields}, (backend, key)
