"""Snapshot versions across crashes (issue 14, item 8): a snapshot written after a restore
outranks every snapshot written before the crash, and per key the version never goes down
along cc.kpi.snapshots.

One `ccpulse worker` process is SIGKILLed three times while a paced simulation is still
producing, each time at a moment when it has written snapshots after its last checkpoint
(the changelog's end offsets have not moved since, the snapshot topic's have: observed, then
checked again after the kill; a kill that a checkpoint raced is repeated), at a different
point of its checkpoint cycle (6, 11 and 15 s after the last checkpoint record; checkpoints
every 20 s, so that thousands of snapshots follow one and the replay spans several
10k-message batches). A new worker is started after
each kill; the last one runs to the end. A history sink (ClickHouse 18.16) stores the MINUTE
snapshots in kpi_minute_stream meanwhile. At the end:

- per key, the last snapshot record on the topic has the highest version of that key;
- per MINUTE key, the highest-version snapshot equals the simulator's ground truth, and so
  does kpi_minute_stream read with argMax(..., version);
- dead letters re-sent by a replay carry their original topic/partition/offset: history
  counts uniqExact of those = the malformed messages injected.

Before the restore epoch (versions = summed input positions only) this failed: 2 keys whose
last record was not their highest version (docs/kpi-engine.md, "Snapshot versions").
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from support.lag_probe import PacedSimulation
from support.truth import TRUTH_TO_SNAPSHOT
from support.workers import (
    FAULTS,
    REGIONS,
    read_truth,
    start_worker,
    summaries,
    wait_exit,
    yesterday,
)

from streams.domain.regions import region_codes
from streams.history.clickhouse_store import ClickHouseDriverStore
from streams.history.event_rows import STREAM_KPI_COUNTERS
from streams.history.migrate import migrate
from streams.history.sink import HistorySink
from streams.services.clickhouse import ClickHouseServer
from streams.wire.codec import Codec
from streams.wire.topics import DEAD_LETTER_TOPIC, SNAPSHOT_TOPIC

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

GROUP = "ccpulse-kpi"
CHANGELOG = f"{GROUP}-changelog"
SIM_HOURS, SIM_WALL_S, SEED = 12.0, 200.0, 47
CHECKPOINT_S = 20.0  # long: a replay spans several 10k-message batches
KILL_AFTER_CHECKPOINT_S = (6.0, 11.0, 15.0)  # where in the checkpoint cycle each kill lands
MAX_KILLS = 6  # a kill that a checkpoint slipped in before (a race of a few ms) is repeated
PARTITIONS = 12


class Ends:
    """Summed high watermarks of a topic's partitions (one consumer, no group)."""

    def __init__(self, bootstrap: str) -> None:
        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": f"ends-{uuid.uuid4().hex[:6]}"}
        )

    def __call__(self, topic: str) -> int:
        total = 0
        for p in range(PARTITIONS):
            try:
                total += self._consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1]
            except Exception:  # the changelog does not exist before the first worker creates it
                return 0
        return total

    def close(self) -> None:
        self._consumer.close()


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:.0f} s"
        time.sleep(0.1)


def kill_after_snapshots_past_checkpoint(
    worker: subprocess.Popen[bytes], ends: Ends, delay_s: float, log: Path
) -> dict[str, Any]:
    """SIGKILL ``worker`` ``delay_s`` after its latest checkpoint record, once snapshots
    followed that record; returns what was observed. Waits on conditions, with deadlines."""
    changelog_at_start = ends(CHANGELOG)
    wait_for(lambda: ends(CHANGELOG) > changelog_at_start, 90, "a checkpoint by the new worker")
    deadline = time.monotonic() + 90
    changelog, snapshots_at_checkpoint, seen_at = ends(CHANGELOG), ends(SNAPSHOT_TOPIC), time.monotonic()
    while True:
        assert worker.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no kill moment found (checkpoints too frequent?)"
        now_changelog, now_snapshots = ends(CHANGELOG), ends(SNAPSHOT_TOPIC)
        if now_changelog != changelog:  # a new checkpoint: the cycle starts again
            changelog, snapshots_at_checkpoint, seen_at = now_changelog, now_snapshots, time.monotonic()
        elif time.monotonic() - seen_at >= delay_s and now_snapshots - snapshots_at_checkpoint >= 20:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            break
        time.sleep(0.05)
    after = ends(CHANGELOG)
    return {
        "after_checkpoint_s": round(time.monotonic() - seen_at, 2),
        "snapshots_since_checkpoint": ends(SNAPSHOT_TOPIC) - snapshots_at_checkpoint,
        "checkpoint_unchanged": after == changelog,
    }


def takeover_seconds(log: Path) -> dict[str, float]:
    """From a worker's info log: the restore (epoch record included) and the epoch record alone."""
    text = log.read_text()
    restore = re.findall(r"checkpoints restored in ([\d.]+) s", text)
    record = re.findall(r"restore epochs .* recorded in ([\d.]+) s", text)
    return {
        "restore_s": float(restore[-1]) if restore else -1,
        "epoch_record_s": float(record[-1]) if record else -1,
    }


def read_topic(bootstrap: str, topic: str, codec: Codec) -> list[tuple[bytes, int, int, dict[str, Any]]]:
    """Every record of ``topic``: (key, partition, offset, decoded value), in offset order per partition."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    partitions = len(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    found: list[tuple[bytes, int, int, dict[str, Any]]] = []
    eof: set[int] = set()
    deadline = time.monotonic() + 120
    try:
        while len(eof) < partitions:
            assert time.monotonic() < deadline, f"{topic} not read to its end"
            for message in consumer.consume(5000, 0.5):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        eof.add(int(message.partition()))  # type: ignore[arg-type]
                    continue
                value = codec.decode(topic, message.value())
                found.append((message.key() or b"", int(message.partition()), int(message.offset()), value))  # type: ignore[arg-type]
    finally:
        consumer.close()
    return found


def history_minutes(store: ClickHouseDriverStore) -> dict[str, dict[str, int]]:
    latest = ", ".join(f"argMax({f}, version)" for f in STREAM_KPI_COUNTERS)
    rows = store.query(
        f"SELECT region, toString(channel), toInt64(toUnixTimestamp(bucket_start)) * 1000, {latest} "  # noqa: S608
        f"FROM {store.database}.kpi_minute_stream GROUP BY region, channel, bucket_start"
    )
    minutes = {}
    for row in rows:
        counters = dict(zip(STREAM_KPI_COUNTERS, map(int, row[3:]), strict=True))
        counters["abandoned"] -= counters["short_abandoned"]  # history keeps short abandons inside
        minutes[f"{row[0]}|{row[1]}|MINUTE|{row[2]}"] = counters
    return minutes


def differences(truth: dict[str, dict[str, int]], got: dict[str, dict[str, int]]) -> dict[str, Any]:
    fields = TRUTH_TO_SNAPSHOT.values()
    return {
        key: ({f: got[key][f] for f in fields} if key in got else None, truth.get(key))
        for key in set(truth) | set(got)
        if any(truth.get(key, {}).get(f, 0) != got.get(key, {}).get(f, 0) for f in fields)
    }


@pytest.mark.timeout(1200)  # ~4 min alone; the simulation is paced, the machine shared
def test_versions_survive_kills_mid_stream(
    fresh_kafka: Any, clickhouse_server: ClickHouseServer, tmp_path: Path
) -> None:
    bootstrap, truth_path = fresh_kafka.bootstrap_servers, tmp_path / "truth.csv"
    codec = Codec.pinned(known_regions=region_codes())
    store = ClickHouseDriverStore(
        clickhouse_server.host, clickhouse_server.tcp_port, database=f"v_{uuid.uuid4().hex[:10]}"
    )
    migrate(store)
    sink = HistorySink(
        {"bootstrap.servers": bootstrap, "group.id": "history", "session.timeout.ms": 6000},
        store, codec, topics=(SNAPSHOT_TOPIC, DEAD_LETTER_TOPIC), max_wait_s=0.5,
    )  # fmt: skip
    stop_sink = threading.Event()
    sink_thread = threading.Thread(target=sink.run, args=(stop_sink,), daemon=True)
    ends = Ends(bootstrap)
    options = ("--checkpoint-interval", str(CHECKPOINT_S), "--idle-exit", "10", "--log-level", "info")
    logs = [tmp_path / f"worker-{i}.log" for i in range(MAX_KILLS + 1)]
    worker = start_worker(bootstrap, GROUP, logs[0], options)
    producer = PacedSimulation(
        regions=REGIONS, duration_s=SIM_HOURS * 3600, seed=SEED, bootstrap_servers=bootstrap,
        start=yesterday() + timedelta(hours=6), faults=FAULTS, truth_path=truth_path,
        speed=SIM_HOURS * 3600 / SIM_WALL_S,
    )  # fmt: skip
    kills: list[dict[str, Any]] = []
    try:
        producer.start()
        sink_thread.start()
        delays = list(KILL_AFTER_CHECKPOINT_S)
        while delays:
            assert len(kills) < MAX_KILLS, f"no clean kill moment in {MAX_KILLS} tries: {kills}"
            kill = kill_after_snapshots_past_checkpoint(worker, ends, delays[0], logs[len(kills)])
            kills.append(kill)
            if kill["checkpoint_unchanged"]:
                delays.pop(0)
            assert producer.is_alive(), f"the simulation ended before the kills were done: {kills}"
            worker = start_worker(bootstrap, GROUP, logs[len(kills)], options)
        producer.hurry()  # the kills are done: the rest of the input at full speed, same messages
        summary = producer.result(timeout_s=SIM_WALL_S + 120)
        assert wait_exit(worker, 240) == 0, logs[len(kills)].read_text()[-3000:]
        snapshot_end = ends(SNAPSHOT_TOPIC)

        def sink_caught_up() -> bool:
            rows = store.query(
                f"SELECT sum(end_offset + 1) FROM (SELECT kafka_partition, max(end_offset) AS end_offset "  # noqa: S608
                f"FROM {store.database}.sink_offsets WHERE topic = '{SNAPSHOT_TOPIC}' "
                "GROUP BY kafka_partition)"
            )
            return bool(rows) and int(rows[0][0] or 0) >= snapshot_end

        wait_for(sink_caught_up, 120, "the history sink stores every snapshot")
    finally:
        stop_sink.set()
        sink_thread.join(timeout=60)
        ends.close()
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    print("\nkills:", kills)
    print("takeovers:", [takeover_seconds(log) for log in logs[: len(kills) + 1]])
    (last_summary,) = summaries(logs[len(kills)])
    assert last_summary["restored"], "the last worker did not restore a checkpoint"
    # each worker took all 12 partitions, recording epoch 1, 2, ... in turn
    assert set(last_summary["epochs"].values()) == {len(kills) + 1}, last_summary["epochs"]

    truth = read_truth(truth_path)
    assert len(truth) > 1_000
    records = read_topic(bootstrap, SNAPSHOT_TOPIC, codec)
    by_key: dict[bytes, list[tuple[int, dict[str, Any]]]] = {}
    for key, _partition, offset, value in records:
        by_key.setdefault(key, []).append((offset, value))
    not_last = {
        key.decode(): [v["version"] for _, v in versions]
        for key, versions in by_key.items()
        if max(v["version"] for _, v in versions) != versions[-1][1]["version"]
    }
    highest = {
        key.decode(): max((v for _, v in versions), key=lambda v: v["version"])
        for key, versions in by_key.items()
    }
    wrong_topic = differences(truth, {k: v for k, v in highest.items() if v["window"] == "MINUTE"})
    wrong_history = differences(truth, history_minutes(store))
    assert not (not_last or wrong_topic or wrong_history), (
        f"{len(not_last)} keys whose last record is not their highest version, "
        f"e.g. {list(not_last.items())[:2]}; "
        f"of {len(truth)} minutes, {len(wrong_topic)} differ on the topic (highest version), e.g. "
        f"{list(wrong_topic.items())[:1]}, {len(wrong_history)} in history (argMax), e.g. "
        f"{list(wrong_history.items())[:1]}"
    )

    dead = read_topic(bootstrap, DEAD_LETTER_TOPIC, codec)
    origins = {(v["original_topic"], v["original_partition"], v["original_offset"]) for *_, v in dead}
    assert len(origins) == summary.malformed > 0
    ((stored,),) = store.query(
        "SELECT uniqExact(original_topic, original_partition, original_offset) "
        f"FROM {store.database}.dead_letters"  # noqa: S608
    )
    assert int(stored) == summary.malformed
    print(f"dead letters: {len(dead)} records, {len(origins)} distinct = {summary.malformed} injected")
    store.close()
