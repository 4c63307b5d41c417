"""The KPI worker on real Apache Kafka reconciles with the simulator's ground truth, exactly.

Each test gets its own broker: the worker reads the input topics from the start and
event-time watermarks would mix other tests' days. Simulated days start yesterday
(UTC), because the topics' 7-day retention deletes older event times.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support.lag_probe import LagProbe, PacedSimulation
from support.waiting import wait_until
from support.workers import (
    FAULTS,
    KPI_GROUP,
    REGIONS,
    assert_snapshots_equal_truth,
    read_truth,
    simulate,
    start_worker,
    summaries,
    wait_exit,
    yesterday,
)

import streams.jobs.worker as worker_module
from streams.domain.regions import region_codes
from streams.engine.read_to_end import read_to_end
from streams.jobs.collector import KpiCollector
from streams.jobs.runner import make_observer
from streams.jobs.worker import KpiWorker, WorkerOptions
from streams.simulator import SimConfig
from streams.wire.codec import Codec
from streams.wire.topics import DEAD_LETTER_TOPIC, INPUT_TOPICS

pytestmark = pytest.mark.kafka

# the paced simulation below writes ~19.5k input messages in ~20 s; the mid-stream steps
# wait for these amounts of progress instead of for fixed times
KILL_AFTER_COMMITTED = 5_000  # the first worker has checkpointed this much when it is killed
BACKLOG_AFTER_KILL = 1_000  # new input written while no worker runs, before the restart
JOIN_AFTER_COMMITTED = 3_000  # the first worker's progress when the second one joins


def count_dead_letters(bootstrap: str) -> int:
    """Records a read_committed reader sees (offsets also count transaction markers)."""
    return sum(1 for _ in read_to_end({"bootstrap.servers": bootstrap}, DEAD_LETTER_TOPIC))


class OwnedLock:
    """A lock that knows its holder: ``Lock.locked()`` is also true when the scraper holds it."""

    def __init__(self) -> None:
        self._lock, self._owner = threading.Lock(), 0

    def __enter__(self) -> OwnedLock:
        self._lock.acquire()
        self._owner = threading.get_ident()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._owner = 0
        self._lock.release()

    def held_by_me(self) -> bool:
        return self._owner == threading.get_ident()


def test_worker_snapshots_equal_ground_truth_for_a_day_with_faults(
    fresh_kafka: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap = fresh_kafka.bootstrap_servers
    summary = simulate(bootstrap, tmp_path / "truth.csv", hours=24)
    assert summary.malformed > 20
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    worker = KpiWorker(
        {"bootstrap.servers": bootstrap},
        Codec.pinned(known_regions=region_codes()),
        WorkerOptions(checkpoint_interval_s=1.0, transactional=True),  # as deploy/ runs it
        observer=make_observer(registry),
    )
    worker.lock = OwnedLock()  # type: ignore[assignment]
    registry.register(KpiCollector(lambda: list(worker.states.values()), worker.lock))
    under_lock: list[bool] = []  # per checkpoint record: did the worker hold the collector's lock?
    real_dumps = worker_module.dumps

    def dumps_watched(state: Any) -> bytes:
        under_lock.append(worker.lock.held_by_me())  # type: ignore[attr-defined]
        return real_dumps(state)

    monkeypatch.setattr(worker_module, "dumps", dumps_watched)
    seen: dict[str, float | None] = {}
    scrapes: list[str] = []  # what each scrape saw (or raised), for the failure message

    def scrape_while_running() -> None:  # the collector reads the live state at scrape time
        while not seen:
            time.sleep(0.1)  # the state is live only while the worker runs
            labels = {"region": "RU-MOW", "channel": "VOICE", "window": "TODAY"}
            try:
                offered = registry.get_sample_value(
                    "ccpulse_contacts_offered_total", {"region": "RU-MOW", "channel": "VOICE"}
                )
                level = registry.get_sample_value("ccpulse_service_level_ratio", labels)
            except Exception as exc:  # noqa: BLE001 - reported below, the scrape goes on
                scrapes.append(f"raised {exc!r}")
                continue
            scrapes.append(f"offered={offered} service_level={level}")
            if offered and level is not None:
                seen["service_level"], seen["offered"] = level, offered

    scraper = threading.Thread(target=scrape_while_running, daemon=True)
    scraper.start()
    stats = worker.run(threading.Event(), idle_exit_s=8.0)
    scraper.join(timeout=5)
    assert seen, f"no service level visible while the worker ran; {len(scrapes)} scrapes: {scrapes[-5:]}"
    assert 0.0 <= seen["service_level"] <= 1.0  # type: ignore[operator]
    assert stats.events == summary.messages
    assert stats.queue_states > 0
    assert stats.dead_letters == summary.malformed == count_dead_letters(bootstrap)
    assert registry.get_sample_value("ccpulse_events_in_total", {"topic": "cc.contact.events"}) > 10_000
    assert_snapshots_equal_truth(bootstrap, read_truth(tmp_path / "truth.csv"))
    assert len(under_lock) >= stats.checkpoints > 0 and not any(under_lock)  # serialised off the lock


def committed_input(probe: LagProbe) -> int:
    """Input messages the KPI group has committed (the worker commits after its checkpoint)."""
    return sum(probe.committed(KPI_GROUP).values())


def written_input(probe: LagProbe) -> int:
    return sum(probe.high().values())


def progress(probe: LagProbe, producer: threading.Thread) -> dict[str, Any]:
    return {
        "committed": committed_input(probe),
        "written": written_input(probe),
        "producing": producer.is_alive(),
    }


def wait_committed(
    probe: LagProbe, producer: threading.Thread, worker: subprocess.Popen[bytes], log: Path, n: int
) -> None:
    """Until the group has committed ``n`` input messages (or the worker exited: shown by the caller)."""
    wait_until(
        lambda: worker.poll() is not None or committed_input(probe) >= n, 120,
        f"the worker committed {n} input messages",
        seen=lambda: progress(probe, producer) | {"log": log.read_text()[-500:]},
    )  # fmt: skip


def paced_simulation(bootstrap: str, truth: Path) -> PacedSimulation:
    """Six simulated hours in about 20 s, so that workers are killed and started mid-stream
    (the input of ``simulate``, paced; its error, if any, fails ``result``)."""
    producer = PacedSimulation(
        regions=REGIONS, duration_s=6 * 3600, seed=11, bootstrap_servers=bootstrap, start=yesterday(),
        faults=FAULTS, truth_path=truth, speed=6 * 3600 / 20, config=SimConfig().with_edge_shapes(),
    )  # fmt: skip
    producer.start()
    return producer


def test_sigkill_and_restart_lose_and_double_count_nothing(fresh_kafka: Any, tmp_path: Path) -> None:
    bootstrap, log, truth = fresh_kafka.bootstrap_servers, tmp_path / "worker.log", tmp_path / "truth.csv"
    probe = LagProbe(bootstrap, {KPI_GROUP: INPUT_TOPICS}).start()
    try:
        first = start_worker(bootstrap, KPI_GROUP, log)
        producer = paced_simulation(bootstrap, truth)
        wait_committed(probe, producer, first, log, KILL_AFTER_COMMITTED)  # a checkpoint to restore
        assert first.poll() is None, log.read_text()[-2000:]
        first.send_signal(signal.SIGKILL)
        first.wait()
        at_kill = written_input(probe)
        wait_until(  # a backlog the restarted worker has to catch up on (unless the input ended)
            lambda: written_input(probe) >= at_kill + BACKLOG_AFTER_KILL or not producer.is_alive(), 60,
            f"{BACKLOG_AFTER_KILL} more input messages written after the kill (at the kill: {at_kill})",
            seen=lambda: progress(probe, producer),
        )  # fmt: skip
    finally:
        probe.stop()
    second = start_worker(bootstrap, KPI_GROUP, log)
    producer.result(timeout_s=120)
    assert wait_exit(second) == 0, log.read_text()[-2000:]
    (summary,) = summaries(log)  # the killed one printed nothing
    assert summary["restored"], "the restarted worker did not restore a checkpoint"
    assert_snapshots_equal_truth(bootstrap, read_truth(truth))
    show = [sys.executable, "-m", "streams.cli", "--json", "kpi", "show", "--bootstrap-servers", bootstrap]
    out = subprocess.run([*show, "--region", "RU-MOW", "--window", "TODAY"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert {row["channel"] for row in rows} == {"VOICE", "CHAT", "MESSENGER", "EMAIL"}
    assert all(row["region"] == "RU-MOW" and row["offered"] >= 0 for row in rows)


def test_two_workers_split_the_partitions_and_still_equal_truth(fresh_kafka: Any, tmp_path: Path) -> None:
    bootstrap, truth = fresh_kafka.bootstrap_servers, tmp_path / "truth.csv"
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    probe = LagProbe(bootstrap, {KPI_GROUP: INPUT_TOPICS}).start()
    try:
        workers = [start_worker(bootstrap, KPI_GROUP, logs[0])]
        producer = paced_simulation(bootstrap, truth)
        wait_committed(probe, producer, workers[0], logs[0], JOIN_AFTER_COMMITTED)
    finally:
        probe.stop()
    workers.append(start_worker(bootstrap, KPI_GROUP, logs[1]))  # joins mid-stream: a rebalance
    producer.result(timeout_s=120)
    for worker, log in zip(workers, logs, strict=True):
        assert wait_exit(worker) == 0, log.read_text()[-2000:]
    events = [summaries(log)[0]["events"] for log in logs]
    assert all(n > 0 for n in events), f"one worker got nothing: {events}"
    assert_snapshots_equal_truth(bootstrap, read_truth(truth))
