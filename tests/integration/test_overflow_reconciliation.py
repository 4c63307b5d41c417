"""Stream = history = ground truth with overflow across partitions (issue 14, DESIGN.md section 3).

A simulated day with every edge shape switched on (overflow between regions that share a
partition and between regions that do not, second transfers, calls ended on hold, ENDED
after an abandon, answers without a queue) and late events up to 15 min (beyond the
10 min allowed lateness) goes through real Apache Kafka -> KPI worker -> history sink ->
ClickHouse (18.16 and chdb). Per region x channel x minute: the SQL from the raw events
equals the simulator's ground truth exactly; the streamed MINUTE snapshots (highest version
in kpi_minute_stream) equal both, except in buckets that an event later than the allowed
lateness touches (those reach history only): they are counted and printed.
"""

from __future__ import annotations

import csv
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from support.truth import TRUTH_TO_SNAPSHOT

from streams.domain.errors import InvalidEvent
from streams.domain.events import ContactEvent, ContactEventType, SurveyEvent
from streams.domain.kpi import MINUTE_MS
from streams.domain.regions import region_codes
from streams.history.event_rows import STREAM_KPI_COUNTERS
from streams.history.kpi_sql import kpi_minute_select
from streams.history.migrate import migrate
from streams.history.sink import HistorySink
from streams.history.store import HistoryStore
from streams.jobs.kpi_apply import KpiConfig
from streams.jobs.worker import KpiWorker, WorkerOptions
from streams.simulator import SimConfig, run
from streams.simulator.config import Faults
from streams.wire.codec import Codec
from streams.wire.topics import CONTACT_TOPIC, SURVEY_TOPIC

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

# RU-MOW and RU-KGD share a partition of the 12-partition input topics (streams.simulator.sinks.partition_of)
# (the test checks that overflow happened both ways, it does not rely on this comment)
REGIONS = ("RU-MOW", "RU-KGD", "RU-KAM", "RU-NVS", "RU-KHA", "RU-OMS")
FAULTS = Faults(duplicate=0.01, late=0.01, malformed=0.002, late_min_s=30, late_max_s=900)
TRUTH_TO_STREAM = TRUTH_TO_SNAPSHOT
Key = tuple[str, str, int]


def read_topic(bootstrap: str, topic: str, codec: Codec) -> list[tuple[int, int, ContactEvent | SurveyEvent]]:
    """(partition, offset, event) of every decodable message, to the end of every partition."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"read-{topic}", "enable.partition.eof": True,
         "enable.auto.commit": False}
    )  # fmt: skip
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in partitions}  # fmt: skip
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions if ends[p] > 0])
        pending, out = {p for p, end in ends.items() if end > 0}, []
        while pending:
            message = consumer.poll(10.0)
            assert message is not None, f"reading {topic}: nothing for 10 s, partitions {pending} unread"
            error = message.error()
            if error is not None:
                assert error.code() == KafkaError._PARTITION_EOF, error
                pending.discard(message.partition())  # type: ignore[arg-type]
                continue
            try:
                event = codec.decode(topic, message.value())
            except InvalidEvent:
                continue
            out.append((int(message.partition()), int(message.offset()), event))  # type: ignore[arg-type]
        return out
    finally:
        consumer.close()


def net(counters: dict[str, int]) -> dict[str, int]:
    """The stream's and the SQL's `abandoned` include short abandons; the truth's does not."""
    return {**counters, "abandoned": counters["abandoned"] - counters["short_abandoned"]}


def too_late(messages: list[tuple[int, int, Any]], lateness_ms: int) -> list[Any]:
    """Events whose minute had closed more than the allowed lateness before their partition's
    watermark when read: the worker's rule (streams/jobs/kpi_apply.py), replayed in offset order."""
    watermark: dict[int, int] = defaultdict(int)
    late = []
    for partition, _, event in sorted(messages, key=lambda m: (m[0], m[1])):
        t = event.event_time_ms
        if t > watermark[partition]:
            watermark[partition] = t
        elif t - t % MINUTE_MS + MINUTE_MS <= watermark[partition] - lateness_ms:
            late.append(event)
    return late


def test_stream_equals_history_equals_truth_with_overflow_across_partitions(
    fresh_kafka: Any, history_stores: list[HistoryStore], tmp_path: Path
) -> None:
    """One simulated day and one worker run; each store (18.16, chdb) sinks it and is held to
    the same assertions."""
    bootstrap, truth_path = fresh_kafka.bootstrap_servers, tmp_path / "truth.csv"
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    summary = run(
        regions=REGIONS, duration_s=12 * 3600, seed=5, out="kafka", bootstrap_servers=bootstrap,
        start=start, faults=FAULTS, truth_path=truth_path, config=SimConfig().with_edge_shapes(),
    )  # fmt: skip
    codec = Codec.pinned(known_regions=region_codes())
    worker = KpiWorker({"bootstrap.servers": bootstrap}, codec, WorkerOptions(routing=False))
    stats = worker.run(threading.Event(), idle_exit_s=4.0)
    assert stats.events == summary.messages
    # overflow happened between regions that share a partition and between regions that do not
    contacts = read_topic(bootstrap, CONTACT_TOPIC, codec)
    arrived_in = {e.contact_id: p for p, _, e in contacts if e.type is ContactEventType.ARRIVED}
    overflowed = {
        e.contact_id: (arrived_in.get(e.contact_id), p)
        for p, _, e in contacts
        if e.type is ContactEventType.QUEUED and e.home_region is not None
    }
    same = sum(1 for a, q in overflowed.values() if a == q)
    assert 0 < same < len(overflowed), f"overflow within a partition: {same} of {len(overflowed)}"

    # the buckets an event later than the allowed lateness touches: the contact's fact minutes
    lateness = KpiConfig().allowed_lateness_ms
    late_contacts = {e.contact_id for e in too_late(contacts, lateness)}
    region_of: dict[str, str] = {}
    for _, _, e in contacts:
        first_other = e.type is not ContactEventType.ARRIVED and e.contact_id not in region_of
        if e.type is ContactEventType.QUEUED or first_other:
            region_of[e.contact_id] = e.region
    touched: set[Key] = set()
    for _, _, e in contacts:
        if e.contact_id in late_contacts and e.type is not ContactEventType.ARRIVED:
            t = e.event_time_ms
            touched.add((region_of[e.contact_id], e.channel.value, t - t % MINUTE_MS))
    surveys = read_topic(bootstrap, SURVEY_TOPIC, codec)
    for e in too_late(surveys, lateness):
        assert isinstance(e, SurveyEvent)
        touched.add((e.region, e.channel.value, e.event_time_ms - e.event_time_ms % MINUTE_MS))
    assert late_contacts, "the faults should include events beyond the allowed lateness"

    with truth_path.open() as f:
        truth = {
            (r["region"], r["channel"], int(r["minute_ms"])): {
                s: int(r[t]) for t, s in TRUTH_TO_STREAM.items()
            }
            for r in csv.DictReader(f)
        }
    for history_store in history_stores:
        assert_history_and_stream(history_store, bootstrap, codec, truth, touched)
    print(
        f"\n{len(overflowed)} overflowed contacts ({same} within a partition); "
        f"{len(late_contacts)} contacts with events beyond the allowed lateness touch {len(touched)} buckets"
    )


def assert_history_and_stream(
    history_store: HistoryStore, bootstrap: str, codec: Codec, truth: dict[Key, dict[str, int]],
    touched: set[Key],
) -> None:  # fmt: skip
    """SQL from raw = truth in every bucket; the streamed snapshots = SQL except in buckets an
    event later than the allowed lateness touches (history has those events, the stream not)."""
    backend = history_store.backend
    migrate(history_store)
    config = {"bootstrap.servers": bootstrap, "group.id": f"history-{backend}", "session.timeout.ms": 6000}
    HistorySink(config, history_store, codec, max_wait_s=0.5).run(threading.Event(), idle_exit_s=5.0)
    db, fields = history_store.database, list(TRUTH_TO_STREAM.values())
    sql = {
        (str(r[0]), str(r[1]), int(r[2])): net(dict(zip(fields, map(int, r[3:]), strict=True)))
        for r in history_store.query(
            f"SELECT region, toString(channel), bucket, {', '.join(fields)} FROM ({kpi_minute_select(db)})"  # noqa: S608
        )
    }
    assert set(fields) <= set(STREAM_KPI_COUNTERS)
    latest = ", ".join(f"argMax({f}, version)" for f in fields)
    streamed = {
        (str(r[0]), str(r[1]), int(r[2])): net(dict(zip(fields, map(int, r[3:]), strict=True)))
        for r in history_store.query(
            f"SELECT region, toString(channel), toInt64(toUnixTimestamp(bucket_start)) * 1000, {latest} "  # noqa: S608
            f"FROM {db}.kpi_minute_stream GROUP BY region, channel, bucket_start"
        )
    }
    zero = dict.fromkeys(fields, 0)
    keys = {k for table in (sql, streamed, truth) for k, v in table.items() if any(v.values())}
    assert len(keys) > 1_000, backend
    sql_vs_truth = {k: (sql.get(k), truth.get(k)) for k in keys if sql.get(k, zero) != truth.get(k, zero)}
    first = list(sql_vs_truth.items())[:2]
    assert not sql_vs_truth, f"{backend}: {len(sql_vs_truth)} buckets SQL != truth: {first}"
    stream_vs_sql = {k for k in keys if streamed.get(k, zero) != sql.get(k, zero)}
    unexplained = {k: (streamed.get(k), sql.get(k)) for k in stream_vs_sql - touched}
    first = list(unexplained.items())[:2]
    assert not unexplained, f"{backend}: {len(unexplained)} buckets differ without a too-late event: {first}"
    print(
        f"\n{backend}: {len(keys)} buckets, {len(stream_vs_sql)} of which differ between stream and "
        "history (history has the late events)"
    )
