"""One contract suite for the engine's Kafka clients: confluent-kafka on Apache Kafka 4.1.1 and
the memory broker (streams/engine/memory_broker.py). Every test runs on both; the expectations
were checked on the real broker first. What is asserted is what the engine relies on."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import OFFSET_INVALID, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import NewTopic
from support.brokers import (
    DEADLINE_S,
    Broker,
    coordinator_ready,
    drain,
    eofs_of,
    produce_all,
    records_of,
)
from support.waiting import wait_until

from streams.engine import memory_cluster
from streams.simulator.sinks import partition_of

pytestmark = pytest.mark.contract


@pytest.fixture(params=[pytest.param("memory", marks=pytest.mark.unit),
                        pytest.param("kafka", marks=pytest.mark.kafka)])  # fmt: skip
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    if request.param == "kafka":
        servers = request.getfixturevalue("kafka").bootstrap_servers
        made = Broker("kafka", {"bootstrap.servers": servers})
        coordinator_ready(made)
    else:
        name = f"contract-{uuid.uuid4().hex[:8]}"
        made = Broker("memory", {"bootstrap.servers": f"memory://{name}"})
    yield made
    made.close()
    memory_cluster.forget(made.config["bootstrap.servers"].removeprefix("memory://"))


# -- topics -------------------------------------------------------------------------------------


def test_topics_are_created_listed_and_refused_twice(broker: Broker) -> None:
    topic = broker.topic(3)
    meta = broker.admin.list_topics(topic, timeout=10)
    assert sorted(meta.topics[topic].partitions) == [0, 1, 2] and meta.topics[topic].error is None
    assert len(meta.brokers) == 1
    assert sorted(broker.producer().list_topics(topic, timeout=10).topics[topic].partitions) == [0, 1, 2]
    again = broker.admin.create_topics([NewTopic(topic, 3, 1)], operation_timeout=30)[topic]
    with pytest.raises(KafkaException) as refused:
        again.result(30)
    assert refused.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
    name = f"contract-{uuid.uuid4().hex[:10]}"
    too_many = broker.admin.create_topics([NewTopic(name, 1, 2)], operation_timeout=30)[name]
    with pytest.raises(KafkaException) as refused:
        too_many.result(30)
    assert refused.value.args[0].code() == KafkaError.INVALID_REPLICATION_FACTOR  # one broker
    missing = broker.admin.list_topics(name, timeout=10).topics[name]
    assert missing.error is not None and missing.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART


# -- producing ---------------------------------------------------------------------------------


def test_keys_land_on_librdkafkas_default_partition_in_order(broker: Broker) -> None:
    topic = broker.topic(4)
    keys = [f"RU-{i % 7}".encode() for i in range(40)]
    reports = produce_all(broker, topic, [(k, str(i).encode()) for i, k in enumerate(keys)])
    # reports come per partition (librdkafka serves them by batch): match them by value
    partition_of_value = {m.value(): m.partition() for m in reports}
    assert [partition_of_value[str(i).encode()] for i in range(40)] == [partition_of(k, 4) for k in keys]
    by_partition: dict[int, list[bytes]] = {}
    for i, k in enumerate(keys):
        by_partition.setdefault(partition_of(k, 4), []).append(str(i).encode())
    for p, values in by_partition.items():
        in_reports = [(m.offset(), m.value()) for m in reports if m.partition() == p]
        assert in_reports == list(enumerate(values))  # in produce order within a partition
    reader = broker.consumer(**{"auto.offset.reset": "earliest"})
    reader.assign([TopicPartition(topic, p) for p in range(4)])
    got = records_of(drain(reader, lambda s: len(records_of(s)) >= 40, "all 40 records"))
    for p, values in by_partition.items():
        assert [m.value() for m in got if m.partition() == p] == values
        assert [m.offset() for m in got if m.partition() == p] == list(range(len(values)))


def test_delivery_reports_come_from_poll_and_flush_only(broker: Broker) -> None:
    topic = broker.topic(2)
    reports: list[tuple[KafkaError | None, Message]] = []
    out = broker.producer()
    out.produce(topic, b"v", b"k", partition=1, on_delivery=lambda e, m: reports.append((e, m)))
    assert reports == [] and len(out) == 1  # never from a background thread
    assert out.flush(30) == 0 and len(out) == 0
    [(error, message)] = reports
    assert error is None
    assert (message.topic(), message.partition(), message.offset()) == (topic, 1, 0)
    assert (message.key(), message.value()) == (b"k", b"v")
    with pytest.raises(KafkaException) as refused:
        out.produce(topic, b"v", partition=5)
    assert refused.value.args[0].code() == KafkaError._UNKNOWN_PARTITION


def test_headers_timestamps_and_null_keys_round_trip(broker: Broker) -> None:
    topic = broker.topic(1)
    out = broker.producer()
    out.produce(topic, b"a", b"k", headers=[("reason", "bad"), ("raw", b"\x00\x01"), ("none", None)],
                timestamp=1_700_000_000_123)  # fmt: skip
    out.produce(topic, b"b")
    assert out.flush(30) == 0
    reader = broker.consumer(**{"auto.offset.reset": "earliest"})
    reader.assign([TopicPartition(topic, 0)])
    first, second = records_of(drain(reader, lambda s: len(records_of(s)) >= 2, "two records"))
    assert first.headers() == [("reason", b"bad"), ("raw", b"\x00\x01"), ("none", None)]
    assert first.timestamp() == (1, 1_700_000_000_123)  # TIMESTAMP_CREATE_TIME
    assert second.headers() is None and second.key() is None and second.value() == b"b"
    assert second.timestamp()[0] == 1 and second.timestamp()[1] > 1_700_000_000_123


# -- offsets -------------------------------------------------------------------------------------


def test_watermarks_are_low_and_high(broker: Broker) -> None:
    topic = broker.topic(2)
    produce_all(broker, topic, [(None, b"x")] * 5, partition=1)
    reader = broker.consumer()
    assert reader.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 0)
    assert reader.get_watermark_offsets(TopicPartition(topic, 1), timeout=10, cached=False) == (0, 5)
    with pytest.raises(KafkaException):
        reader.get_watermark_offsets(TopicPartition(f"missing-{uuid.uuid4().hex[:6]}", 0), timeout=5)


def test_commit_committed_position_and_resume_from_committed(broker: Broker) -> None:
    topic = broker.topic(1)
    produce_all(broker, topic, [(None, str(i).encode()) for i in range(5)])
    group, tp = f"g-{uuid.uuid4().hex[:8]}", TopicPartition(topic, 0)
    first = broker.consumer(group, **{"auto.offset.reset": "earliest"})
    assert first.committed([tp], timeout=10)[0].offset == OFFSET_INVALID
    first.assign([tp])
    got = records_of(drain(first, lambda s: len(records_of(s)) >= 3, "three records", n=3))
    assert [m.offset() for m in got] == [0, 1, 2]
    assert first.position([tp])[0].offset == 3
    committed = first.commit(offsets=[TopicPartition(topic, 0, 3)], asynchronous=False)
    assert [(c.topic, c.partition, c.offset) for c in committed] == [(topic, 0, 3)]
    assert first.committed([tp], timeout=10)[0].offset == 3
    first.close()
    other = broker.consumer(**{"auto.offset.reset": "earliest"})
    assert other.committed([tp], timeout=10)[0].offset == OFFSET_INVALID  # per group
    again = broker.consumer(group, **{"auto.offset.reset": "earliest"})
    again.subscribe([topic])
    resumed = records_of(drain(again, lambda s: len(records_of(s)) >= 2, "the records after the commit"))
    assert [m.offset() for m in resumed] == [3, 4]


def test_on_assign_may_set_the_starting_offsets(broker: Broker) -> None:
    """The worker restores a checkpoint in on_assign and starts each partition at its position."""
    topic = broker.topic(2)
    produce_all(broker, topic, [(None, b"x")] * 4, partition=0)
    produce_all(broker, topic, [(None, b"y")] * 4, partition=1)
    starts = {0: 3, 1: 1}

    def on_assign(c: Any, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            tp.offset = starts[tp.partition]
        c.assign(partitions)

    reader = broker.consumer(**{"auto.offset.reset": "earliest"})
    reader.subscribe([topic], on_assign=on_assign)
    got = records_of(drain(reader, lambda s: len(records_of(s)) >= 4, "records from the chosen offsets"))
    assert sorted((m.partition(), m.offset()) for m in got) == [(0, 3), (1, 1), (1, 2), (1, 3)]


def test_auto_offset_reset_earliest_and_latest(broker: Broker) -> None:
    topic = broker.topic(1)
    produce_all(broker, topic, [(None, b"old")] * 3)
    earliest = broker.consumer(**{"auto.offset.reset": "earliest"})
    earliest.subscribe([topic])
    old = records_of(drain(earliest, lambda s: len(records_of(s)) >= 3, "the old records"))
    assert [m.offset() for m in old] == [0, 1, 2]
    latest = broker.consumer(**{"auto.offset.reset": "latest", "enable.partition.eof": True})
    latest.subscribe([topic])
    started = drain(latest, eofs_of, "the end of the partition")
    assert [(m.offset(), m.error() is not None) for m in started] == [(3, True)]  # no old record
    produce_all(broker, topic, [(None, b"new")] * 2)
    new = records_of(drain(latest, lambda s: len(records_of(s)) >= 2, "the new records"))
    assert [(m.offset(), m.value()) for m in new] == [(3, b"new"), (4, b"new")]


def test_partition_eof_once_each_time_the_end_is_reached(broker: Broker) -> None:
    topic = broker.topic(2)
    produce_all(broker, topic, [(None, b"a"), (None, b"b")], partition=0)
    reader = broker.consumer(**{"auto.offset.reset": "earliest", "enable.partition.eof": True})
    reader.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    seen = drain(reader, lambda s: len(eofs_of(s)) >= 2, "both partitions' ends")
    seen += reader.consume(500, 1.0)  # and nothing more: one event per end reached
    p0 = [(m.offset(), m.error() is not None) for m in seen if m.partition() == 0]
    assert p0 == [(0, False), (1, False), (2, True)]  # the event follows the last record
    assert eofs_of(seen).count((1, 0)) == 1 and len(eofs_of(seen)) == 2  # an empty partition too
    eof = next(m for m in seen if m.error() is not None and m.partition() == 1)
    assert (eof.topic(), eof.key()) == (topic, None)
    assert b"reached end of partition at offset 0" in eof.value()  # librdkafka: the reason
    produce_all(broker, topic, [(None, b"c")], partition=0)
    more = drain(reader, lambda s: len(eofs_of(s)) >= 1, "the new end of partition 0")
    more += reader.consume(500, 1.0)
    assert [(m.partition(), m.offset(), m.error() is not None) for m in more] == [(0, 2, False), (0, 3, True)]


def test_consume_returns_at_most_n(broker: Broker) -> None:
    topic = broker.topic(1)
    produce_all(broker, topic, [(None, str(i).encode()) for i in range(10)])
    reader = broker.consumer(**{"auto.offset.reset": "earliest"})
    reader.assign([TopicPartition(topic, 0)])
    batches: list[int] = []

    def all_read() -> bool:
        batch = reader.consume(3, 0.5)
        batches.append(len(batch))
        return sum(batches) >= 10

    wait_until(
        all_read, DEADLINE_S, "ten records in batches of at most 3", seen=lambda: batches, interval_s=0
    )
    assert max(batches) == 3 and sum(batches) == 10 and all(b <= 3 for b in batches)


# -- consumer groups -------------------------------------------------------------------------------


class Member:
    """A group member recording its rebalance callbacks and whether each ran inside consume/close."""

    def __init__(self, broker: Broker, group: str, topics: list[str]) -> None:
        self.events: list[tuple[str, list[tuple[str, int]], str]] = []
        self._inside = ""
        self.consumer = broker.consumer(group, **{"partition.assignment.strategy": "range"})
        self.consumer.subscribe(
            topics, on_assign=self._callback("assign"), on_revoke=self._callback("revoke")
        )
        self.thread = threading.get_ident()

    def _callback(self, kind: str) -> Callable[[Any, list[TopicPartition]], None]:
        def called(_c: Any, partitions: list[TopicPartition]) -> None:
            inside = self._inside if threading.get_ident() == self.thread else "another thread"
            self.events.append((kind, sorted((tp.topic, tp.partition) for tp in partitions), inside))

        return called

    def step(self) -> None:
        self._inside = "consume"
        self.consumer.consume(100, 0.1)
        self._inside = ""

    def close(self) -> None:
        self._inside = "close"
        self.consumer.close()
        self._inside = ""

    def owned(self) -> list[tuple[str, int]]:
        return sorted((tp.topic, tp.partition) for tp in self.consumer.assignment())


def test_a_group_splits_partitions_by_range_and_gives_them_back(broker: Broker) -> None:
    topics = sorted([broker.topic(4), broker.topic(4)])
    everything = sorted((t, p) for t in topics for p in range(4))
    group = f"g-{uuid.uuid4().hex[:8]}"
    a = Member(broker, group, topics)

    def step(*members: Member) -> Callable[[], bool]:
        def check() -> bool:
            for m in members:
                m.step()
                owned = [set(o.owned()) for o in members]
                assert not (len(owned) == 2 and owned[0] & owned[1]), f"owned twice: {owned}"
            return True

        return check

    wait_until(lambda: step(a)() and a.owned() == everything, DEADLINE_S, "a alone owning all", seen=a.owned,
               interval_s=0)  # fmt: skip
    b = Member(broker, group, topics)
    wait_until(lambda: step(b, a)() and len(a.owned()) == len(b.owned()) == 4, DEADLINE_S, "a 4/4 split",
               seen=lambda: (a.owned(), b.owned()), interval_s=0)  # fmt: skip
    assert sorted(a.owned() + b.owned()) == everything
    for member in (a, b):  # range: partition p of every topic with the same member, contiguous
        numbers = {t: [p for t2, p in member.owned() if t2 == t] for t in topics}
        assert numbers[topics[0]] == numbers[topics[1]] and numbers[topics[0]] in ([0, 1], [2, 3])
    assert a.events == [
        ("assign", everything, "consume"),
        ("revoke", everything, "consume"),
        ("assign", a.owned(), "consume"),
    ]  # eager: all revoked, then the new plan
    assert b.events == [("assign", b.owned(), "consume")]
    b_owned = b.owned()
    b.close()
    assert b.events[-1] == ("revoke", b_owned, "close")
    wait_until(lambda: step(a)() and a.owned() == everything, DEADLINE_S, "a owning all again",
               seen=a.owned, interval_s=0)  # fmt: skip
    assert a.events[3:] == [("revoke", sorted(set(everything) - set(b_owned)), "consume"),
                            ("assign", everything, "consume")]  # fmt: skip


def test_paused_partitions_are_not_fetched_until_resumed(broker: Broker) -> None:
    """The history sink pauses its partitions while ClickHouse is down and keeps polling."""
    topic = broker.topic(1)
    tp = TopicPartition(topic, 0)
    reader = broker.consumer(**{"auto.offset.reset": "earliest", "enable.partition.eof": True})
    reader.assign([tp])
    drain(reader, eofs_of, "the fetcher at the (empty) partition's end")
    reader.pause([tp])
    produce_all(broker, topic, [(None, b"held")])
    assert records_of(reader.consume(100, 1.0)) == []
    reader.resume([tp])
    held = records_of(drain(reader, records_of, "the record after resume"))
    assert [(m.offset(), m.value()) for m in held] == [(0, b"held")]


def test_a_closed_consumer_refuses_calls(broker: Broker) -> None:
    reader = broker.consumer()
    reader.close()
    with pytest.raises(RuntimeError):
        reader.consume(1, 0.1)
    with pytest.raises(RuntimeError):
        reader.assignment()


# -- reading to the end (streams/engine/read_to_end.py) -------------------------------------------


def test_read_to_end_stops_at_the_end_it_found_while_a_writer_keeps_appending(broker: Broker) -> None:
    """A clean-clone CI run timed out in read_to_end chasing partition-EOF on a topic a paced
    worker kept writing; it must stop at the end offsets it found when it started."""
    from streams.engine.read_to_end import read_to_end

    topic = broker.topic(2)
    produce_all(broker, topic, [(b"k", str(i).encode()) for i in range(200)], partition=0)
    produce_all(broker, topic, [(b"k", b"one")], partition=1)
    stop, written = threading.Event(), [0]

    def keep_writing() -> None:
        out = broker.producer(**{"linger.ms": 0})
        while not stop.is_set():
            out.produce(topic, b"more", b"k", partition=0)
            written[0] += 1
            out.poll(0)
            if written[0] % 50 == 0:  # at most about 5,000 a second: ten times the reader
                out.flush(10)
                time.sleep(0.01)
        out.flush(30)

    writer = threading.Thread(target=keep_writing, daemon=True)
    writer.start()
    try:
        wait_until(lambda: written[0] > 500, DEADLINE_S, "the writer under way", seen=lambda: written)
        read = []
        for m in read_to_end(broker.config, topic, timeout_s=DEADLINE_S):
            read.append((m.partition(), m.offset(), m.value()))
            if len(read) % 50 == 0:  # about 500 a second, slower than the writer: it never catches up
                time.sleep(0.1)
        assert not stop.is_set() and writer.is_alive()  # it returned while the writer still wrote
        wait_until(lambda: written[0] > 500 + len(read), DEADLINE_S, "the writer past what was read")
    finally:
        stop.set()
        writer.join(60)
    p0 = [(o, v) for p, o, v in read if p == 0]
    assert p0[:200] == [(i, str(i).encode()) for i in range(200)]  # everything there at the start
    assert [o for o, _ in p0] == list(range(len(p0)))  # in order, no gaps, nothing twice
    _, high = broker.consumer().get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
    assert len(p0) < high  # it stopped short of what the writer appended afterwards
    assert [(o, v) for p, o, v in read if p == 1] == [(0, b"one")]
