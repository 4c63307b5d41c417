"""Snapshot versions: restore epoch above the position sum; checkpoint format 1 -> 3 upgrade;
the epoch taken on assignment is recorded before anything is emitted."""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest
from confluent_kafka import KafkaException, TopicPartition

from streams.engine.transactions import OutputCommitter
from streams.jobs import worker as worker_module
from streams.jobs.state import FORMAT_VERSION, PartitionState, dumps, loads
from streams.jobs.windows import POSITION_BITS, snapshot_version, version_parts
from streams.jobs.worker import KpiWorker
from streams.wire.codec import Codec


def state(epoch: int, **positions: int) -> PartitionState:
    return PartitionState(0, next_offsets=dict(positions), epoch=epoch)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (state(1, contact=5_000, agent=3_000, survey=300), state(2, contact=10)),  # lower sum, later epoch
        (state(0, contact=10**9), state(1)),  # format-1 checkpoints restore as epoch 0
        (state(1, contact=100, agent=50), state(1, contact=100, agent=51)),  # within an epoch: the sum
        (state(7, contact=(1 << POSITION_BITS) - 1), state(8)),  # the largest sum of an epoch
    ],
)
def test_a_later_epoch_outranks_any_position_sum(before: PartitionState, after: PartitionState) -> None:
    assert snapshot_version(after) > snapshot_version(before)
    assert version_parts(snapshot_version(after)) == (after.epoch, sum(after.next_offsets.values()))


def test_versions_fit_avro_long_and_out_of_range_is_refused() -> None:
    assert snapshot_version(state((1 << 23) - 1, contact=(1 << POSITION_BITS) - 1)) < 1 << 63
    with pytest.raises(OverflowError):
        snapshot_version(state(1, contact=1 << POSITION_BITS))
    with pytest.raises(OverflowError):
        snapshot_version(state(1 << 23))


def format_1(current: bytes) -> bytes:
    """A checkpoint as format 1 wrote it: no epoch."""
    document = json.loads(zlib.decompress(current))
    del document["epoch"]
    return zlib.compress(json.dumps({**document, "format": 1}).encode())


def test_format_1_checkpoint_loads_with_epoch_0_and_is_written_as_the_current_format() -> None:
    original = PartitionState(4, next_offsets={"cc.contact.events": 42, "cc.survey.events": 7}, epoch=5)
    original.minutes[("RU-MOW", "VOICE", 60_000)] = {"offered": 3}
    old = loads(format_1(dumps(original)))
    assert old.epoch == 0
    assert (old.partition, old.next_offsets, old.minutes) == (4, original.next_offsets, original.minutes)
    assert FORMAT_VERSION == 3  # 3: agents' NOT_READY reasons (tests/unit/test_not_ready_reasons.py)
    assert json.loads(zlib.decompress(dumps(old)))["format"] == FORMAT_VERSION
    assert loads(dumps(original)).epoch == 5
    future = json.loads(zlib.decompress(dumps(original)))
    with pytest.raises(ValueError, match="format 4"):
        loads(zlib.compress(json.dumps({**future, "format": 4}).encode()))


class FakeProducer:
    def __init__(self, events: list[Any], fail: bool = False) -> None:
        self.events, self.fail = events, fail
        self.pending: list[tuple[str, int, bytes, bytes]] = []

    def produce(self, topic: str, value: bytes, key: bytes, partition: int, on_delivery: Any) -> None:
        self.pending.append((topic, partition, key, value))

    def flush(self, timeout: float) -> int:
        self.events += [("recorded", *p) for p in self.pending]
        left, self.pending = (len(self.pending) if self.fail else 0), []
        return left


class FakeConsumer:
    def __init__(self, events: list[Any]) -> None:
        self.events = events

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.events.append(("assign", sorted(tp.partition for tp in partitions)))


def assign(monkeypatch: pytest.MonkeyPatch, restored: dict[int, PartitionState], fail: bool = False) -> Any:
    monkeypatch.setattr(worker_module, "restored_states", lambda _config, _app, _numbers: restored)
    events: list[Any] = []
    worker = KpiWorker({"bootstrap.servers": "127.0.0.1:1"}, Codec.pinned())
    worker.loop.producer = FakeProducer(events, fail)  # type: ignore[assignment]
    worker.loop._out = OutputCommitter(worker.loop.producer, transactional=False)  # Tansu: flush, no commit
    partitions = [TopicPartition(t, p) for t in ("cc.contact.events", "cc.survey.events") for p in (0, 1)]
    worker.loop._on_assign(FakeConsumer(events), partitions)  # type: ignore[arg-type]
    return worker, events


def test_assignment_takes_the_next_epoch_and_records_it_before_consuming(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checkpoint = PartitionState(0, next_offsets={"cc.contact.events": 900}, epoch=3)
    worker, events = assign(monkeypatch, {0: checkpoint})
    assert {p: s.epoch for p, s in worker.states.items()} == {0: 4, 1: 1}  # restored + 1; fresh: 1
    assert worker.stats.epochs == {0: 4, 1: 1}
    recorded = {e[2]: loads(e[4]) for e in events if e[0] == "recorded"}
    assert {p: (s.epoch, s.next_offsets) for p, s in recorded.items()} == {
        0: (4, {"cc.contact.events": 900}),
        1: (1, {}),
    }
    assert [e[0] for e in events] == ["recorded", "recorded", "assign"]  # durable before any input
    assert {e[1] for e in events if e[0] == "recorded"} == {"ccpulse-kpi-changelog"}


def test_an_unrecorded_epoch_stops_the_assignment(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KafkaException, match="restore epochs not delivered"):
        assign(monkeypatch, {}, fail=True)
