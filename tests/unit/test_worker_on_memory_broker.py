"""The KPI worker, unchanged, on the memory broker: its snapshots equal the simulator's ground
truth and a restarted worker restores every checkpoint, as on Apache Kafka
(tests/integration/test_kpi_worker.py). The broker is the fake that
tests/contract/test_memory_broker.py holds to Kafka's behaviour.
The engine builds its clients through streams/engine/clients.py, so the ``memory://``
bootstrap alone selects the memory broker."""

from __future__ import annotations

import csv
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import NewTopic
from support.truth import TRUTH_TO_SNAPSHOT

from streams.domain.regions import region_codes
from streams.engine import memory_broker, memory_cluster
from streams.jobs.snapshot_reader import latest_snapshots
from streams.jobs.worker import KpiWorker, WorkerOptions, WorkerStats
from streams.simulator import SimConfig, run
from streams.simulator.config import Faults
from streams.wire.codec import Codec
from streams.wire.record_file import read_records
from streams.wire.topic_admin import effective_configs
from streams.wire.topic_contracts import load_topic_contracts

pytestmark = pytest.mark.unit
REGIONS = ("RU-MOW", "RU-KGD", "RU-KAM", "RU-NVS")
FAULTS = Faults(duplicate=0.01, late=0.01, malformed=0.002, late_min_s=30, late_max_s=540)


@pytest.fixture
def memory_config() -> Iterator[dict[str, str]]:
    name = f"worker-{uuid.uuid4().hex[:8]}"
    config = {"bootstrap.servers": f"memory://{name}"}
    admin = memory_broker.AdminClient(config)
    for c in load_topic_contracts().values():
        new = NewTopic(c.name, c.partitions, 1, config=effective_configs(c, 1))
        admin.create_topics([new])[c.name].result()
    yield config
    memory_cluster.forget(name)


def run_worker(config: dict[str, str], codec: Codec, options: WorkerOptions) -> WorkerStats:
    """Until idle and read to the end; stopped after a deadline (a broker fault must not hang)."""
    stop = threading.Event()
    deadline = threading.Timer(120, stop.set)
    deadline.start()
    try:
        return KpiWorker(config, codec, options).run(stop, idle_exit_s=1.0)
    finally:
        deadline.cancel()


def test_worker_on_the_memory_broker_equals_truth_and_restores(
    memory_config: dict[str, str], tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    start = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=1)
    summary = run(
        regions=REGIONS, duration_s=3 * 3600, seed=11, out="file", path=tmp_path / "sim.bin", start=start,
        faults=FAULTS, truth_path=tmp_path / "truth.csv", config=SimConfig().with_edge_shapes(),
    )  # fmt: skip
    producer = memory_broker.Producer(memory_config)
    for topic, key, value, timestamp_ms in read_records(tmp_path / "sim.bin"):
        producer.produce(topic, value, key, timestamp=timestamp_ms)
    assert producer.flush(10) == 0
    codec = Codec.pinned(known_regions=region_codes())
    options = WorkerOptions(checkpoint_interval_s=0.5, routing_max_wait_s=1.0)
    stats = run_worker(memory_config, codec, options)
    assert stats.events == summary.messages and stats.dead_letters == summary.malformed > 0
    assert stats.queue_states > 0 and stats.decisions > 0

    with (tmp_path / "truth.csv").open() as f:
        truth = {
            f"{r['region']}|{r['channel']}|MINUTE|{r['minute_ms']}": {
                s: int(r[t]) for t, s in TRUTH_TO_SNAPSHOT.items()
            }
            for r in csv.DictReader(f)
        }
    minutes = {k: s for k, s in latest_snapshots(memory_config, codec).items() if s["window"] == "MINUTE"}
    assert len(truth) > 300
    wrong = [
        k for k in set(truth) | set(minutes)
        if any(truth.get(k, {}).get(f, 0) != minutes.get(k, {}).get(f, 0) for f in TRUTH_TO_SNAPSHOT.values())
    ]  # fmt: skip
    assert not wrong, f"{len(wrong)} of {len(truth)} minutes differ, e.g. {wrong[:3]}"

    again = run_worker(memory_config, codec, options)
    partitions = load_topic_contracts()["cc.contact.events"].partitions
    assert again.events == 0 and len(again.restored) == partitions  # every checkpoint, nothing re-read
    assert set(again.epochs.values()) == {2}
