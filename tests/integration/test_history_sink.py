"""History sink on real Apache Kafka into ClickHouse 18.16 and chdb: every event once,
crash between write and bookkeeping, ClickHouse outage with back-pressure, an offset
commit refused by the group."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from streams.domain.events import Channel, ContactEvent, ContactEventType
from streams.domain.regions import region_codes
from streams.history.chdb_store import ChdbStore
from streams.history.clickhouse_store import ClickHouseDriverStore
from streams.history.migrate import migrate
from streams.history.sink import HistorySink
from streams.history.store import HistoryStore
from streams.services.clickhouse import ClickHouseServer
from streams.services.kafka import KafkaCluster
from streams.wire.codec import Codec
from streams.wire.topic_admin import apply_topics

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

TOPIC = "cc.contact.events"
T0 = 1_795_500_000_000
REGIONS = sorted(region_codes())[:12]


def make_events(prefix: str, n: int) -> list[ContactEvent]:
    return [
        ContactEvent(
            event_id=f"{prefix}-{i}",
            contact_id=f"{prefix}-c{i // 4}",
            type=ContactEventType.QUEUED,
            channel=Channel.VOICE,
            region=REGIONS[i % len(REGIONS)],
            queue="billing",
            language="ru",
            customer_ref=f"{i:032x}",
            event_time_ms=T0 + i * 37,
        )  # fmt: skip
        for i in range(n)
    ]


def produce(bootstrap: str, events: list[ContactEvent], malformed: int = 0) -> None:
    codec = Codec.pinned()
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    for event in events:
        producer.produce(TOPIC, key=event.region.encode(), value=codec.encode(TOPIC, event))
    for i in range(malformed):
        producer.produce(TOPIC, key=b"RU-MOW", value=b"\x00\x00\x00\x00" + bytes([i]))  # truncated garbage
    assert producer.flush(30) == 0


@pytest.fixture
def topics(kafka: KafkaCluster) -> str:
    apply_topics(kafka.bootstrap_servers)
    return kafka.bootstrap_servers


@pytest.fixture
def store(history_store: HistoryStore) -> HistoryStore:
    migrate(history_store)
    return history_store


def counts(store: HistoryStore, prefix: str) -> tuple[int, int]:
    (row,) = store.query(
        f"SELECT count(), uniqExact(event_id) FROM {store.database}.contact_events "
        f"WHERE startsWith(event_id, '{prefix}-')"
    )
    return int(row[0]), int(row[1])


def sink(bootstrap: str, store: HistoryStore, group: str, **kw: Any) -> HistorySink:
    config = {"bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": 6000}
    return HistorySink(config, store, Codec.pinned(known_regions=region_codes()), max_wait_s=0.5, **kw)


def assert_offsets_contiguous(store: HistoryStore, group: str) -> None:
    rows = store.query(
        f"SELECT topic, kafka_partition, start_offset, end_offset FROM {store.database}.sink_offsets "
        f"WHERE consumer_group = '{group}' ORDER BY topic, kafka_partition, start_offset"
    )
    previous: dict[tuple[str, int], int] = {}
    for topic, partition, start, end in rows:
        key = (topic, int(partition))
        if key in previous:
            assert int(start) == previous[key] + 1, (key, start, previous[key])
        assert int(end) >= int(start)
        previous[key] = int(end)
    assert rows


def test_every_event_written_once_and_malformed_skipped(topics: str, store: HistoryStore) -> None:
    prefix, group = f"once{uuid.uuid4().hex[:6]}", f"sink-{uuid.uuid4().hex[:6]}"
    produce(topics, make_events(prefix, 5000), malformed=10)
    registry = CollectorRegistry()
    stats = sink(topics, store, group, max_rows=1000, registry=registry).run(threading.Event(), idle_exit_s=4)
    assert counts(store, prefix) == (5000, 5000)
    written = registry.get_sample_value("ccpulse_history_rows_written_total", {"table": "contact_events"})
    assert written is not None and written >= 5000
    assert (
        registry.get_sample_value("ccpulse_history_invalid_skipped_total", {"topic": TOPIC})
        == stats.skipped_invalid
    )
    assert registry.get_sample_value("ccpulse_history_batches_total") == stats.batches
    assert stats.skipped_invalid >= 10
    assert stats.batches >= 5  # 1000-row batches
    assert_offsets_contiguous(store, group)


class CrashAfterRows:
    """A store that dies (like a killed process) right after writing the second batch of
    rows that contain ``prefix`` events, before recording that batch in sink_offsets."""

    def __init__(self, inner: HistoryStore, prefix: str) -> None:
        self.inner, self.prefix, self.armed, self.batches_seen = inner, prefix, False, 0
        self.backend, self.database = inner.backend, inner.database

    def insert(self, table: str, columns: Any, rows: Any) -> int:
        if table.endswith(".sink_offsets") and self.armed:
            raise KeyboardInterrupt("simulated crash between write and bookkeeping")
        written = self.inner.insert(table, columns, rows)
        if table.endswith(".contact_events") and any(str(r[0]).startswith(self.prefix) for r in rows):
            self.batches_seen += 1
            self.armed = self.batches_seen == 2
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_crash_between_write_and_bookkeeping_counts_once(topics: str, store: HistoryStore) -> None:
    prefix, group = f"crash{uuid.uuid4().hex[:6]}", f"sink-{uuid.uuid4().hex[:6]}"
    produce(topics, make_events(prefix, 4000))
    crashing = CrashAfterRows(store, prefix)
    with pytest.raises(KeyboardInterrupt):
        sink(topics, crashing, group, max_rows=1000).run(threading.Event(), idle_exit_s=4)  # type: ignore[arg-type]
    written_before_restart = counts(store, prefix)[0]
    assert 0 < written_before_restart < 4000

    restarted = sink(topics, store, group, max_rows=1000)
    stats = restarted.run(threading.Event(), idle_exit_s=4)
    assert stats.resumed_from, "the restarted sink did not resume from sink_offsets"
    total, unique = counts(store, prefix)
    assert unique == 4000  # nothing lost, nothing double-counted
    assert total >= 4000  # the replayed batch may exist twice until a merge
    store.execute(f"OPTIMIZE TABLE {store.database}.contact_events FINAL")
    assert counts(store, prefix) == (4000, 4000)
    assert_offsets_contiguous(store, group)


def test_clickhouse_outage_pauses_and_loses_nothing(topics: str, tmp_path: Path) -> None:
    server = ClickHouseServer(tmp_path / "ch").start()
    store = ClickHouseDriverStore(server.host, server.tcp_port, database="outage")
    try:
        migrate(store)
        prefix, group = f"down{uuid.uuid4().hex[:6]}", f"sink-{uuid.uuid4().hex[:6]}"
        history_sink = sink(topics, store, group, max_rows=500, max_backoff_s=1.0)
        stop = threading.Event()
        thread = threading.Thread(target=history_sink.run, args=(stop,), daemon=True)
        thread.start()
        produce(topics, make_events(prefix, 1000))
        deadline = time.monotonic() + 30
        while counts(store, prefix) != (1000, 1000) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert counts(store, prefix) == (1000, 1000)

        server.stop()
        produce(topics, make_events(prefix, 3000)[1000:])
        deadline = time.monotonic() + 30
        while history_sink.stats.write_failures < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert history_sink.stats.write_failures >= 2  # retried with backoff while down
        server.restart()

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if counts(store, prefix)[1] == 3000:
                    break
            except Exception:  # reconnecting
                pass
            time.sleep(0.5)
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive()
        assert counts(store, prefix)[1] == 3000
    finally:
        store.close()
        server.stop()


class SlowFirstInsert:
    """A store whose first insert of events takes longer than the consumer's
    max.poll.interval.ms (a ClickHouse insert hanging on a struggling server): the group
    drops the member meanwhile, so the offset commit after that write is refused."""

    def __init__(self, inner: HistoryStore, seconds: float) -> None:
        self.inner, self.seconds, self.slow = inner, seconds, True
        self.backend, self.database = inner.backend, inner.database

    def insert(self, table: str, columns: Any, rows: Any) -> int:
        if self.slow and table.endswith(".contact_events"):
            self.slow = False
            time.sleep(self.seconds)
        return self.inner.insert(table, columns, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_refused_offset_commit_does_not_stop_the_sink(topics: str, tmp_path: Path) -> None:
    """Regression: a refused commit (UNKNOWN_MEMBER_ID here; NOT_COORDINATOR and the like
    when a broker fails) raised out of the sink and stopped it. The commit is only a hint:
    the sink rejoins and resumes from sink_offsets, every event once."""
    store = ChdbStore(tmp_path / "chdb", database="commit")
    try:
        migrate(store)
        prefix, group = f"commit{uuid.uuid4().hex[:6]}", f"sink-{uuid.uuid4().hex[:6]}"
        produce(topics, make_events(prefix, 2000))
        config = {
            "bootstrap.servers": topics,
            "group.id": group,
            "session.timeout.ms": 6000,
            "max.poll.interval.ms": 6000,  # the broker's minimum session timeout; the insert takes 8 s
        }
        codec = Codec.pinned(known_regions=region_codes())
        slow = SlowFirstInsert(store, seconds=8.0)
        history_sink = HistorySink(config, slow, codec, max_rows=500, max_wait_s=0.5)  # type: ignore[arg-type]
        stats = history_sink.run(threading.Event(), idle_exit_s=6)
        assert stats.commit_failures >= 1, "the commit after the slow write was not refused"
        assert counts(store, prefix)[1] == 2000
        assert stats.resumed_from, "the sink did not resume from sink_offsets after rejoining"
        assert_offsets_contiguous(store, group)
    finally:
        store.close()
