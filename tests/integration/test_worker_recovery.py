"""Worker failure and scaling (issue 9): three `ccpulse worker` processes in one group,
one SIGKILLed under a paced stream, later a third one started again; how long until the
KPIs are current again, and the final snapshots still equal the ground truth.

**Recovery time** (what is measured and asserted): from the SIGKILL until every input
partition the killed worker owned is current again, i.e. at the first probe sample (every
0.25 s) at which (a) a surviving worker has committed past where the killed one stopped on
each of its busy cc.contact.events partitions, and (b) the time lag of each of its
partitions is at most 2 s. The time lag (lag_probe.py) is the age of the oldest input
message the group has not committed; the worker commits only after its checkpoint and
snapshots are acknowledged, so it is how stale the KPIs in cc.kpi.snapshots are. Parts of
it, from the workers' logs: detection (the group notices the dead member only when its
session times out: `session.timeout.ms` = 10 s in streams/app/worker.py), the restore of
the partitions' checkpoints from the compacted changelog (the "standby": one fetch of the
last record per partition, no replay), then the catch-up of what arrived meanwhile.

**Scale-out time**: from starting a new worker process until it owns partitions and every
partition is current again by the same rule (the range assignor is eager: every partition
pauses for the rebalance). The figures are printed; run with ``-s`` to see them.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lag_probe import TP, LagProbe, PacedSimulation
from test_kpi_worker import (
    FAULTS,
    REGIONS,
    assert_snapshots_equal_truth,
    read_truth,
    start_worker,
    summaries,
    yesterday,
)

from streams.app.worker import INPUT_TOPICS
from streams.records import CONTACT_TOPIC

pytestmark = pytest.mark.kafka

GROUP = "ccpulse-kpi"
SIM_HOURS, SIM_WALL_S, SEED = 6.0, 60.0, 31  # 70.7k messages
CURRENT_S = 2.0  # a partition is current when its time lag is at most this
RECOVERY_BOUND_S = 60.0
ASSIGNED = re.compile(
    r"^(\S+ \S+) INFO ccpulse\.app\.worker assigned (\d+) partitions "
    r"\((\d+) checkpoints restored in ([\d.]+) s\): \[(.*)\]$"
)


def start(bootstrap: str, log: Path) -> subprocess.Popen[bytes]:
    return start_worker(bootstrap, GROUP, log, ("--log-level", "info"))  # info: assignments and restores


def assignments(log: Path) -> list[dict[str, Any]]:
    """Every assignment a worker logged: wall time, partitions, restore figures."""
    found = []
    for line in log.read_text().splitlines():
        match = ASSIGNED.match(line)
        if match:
            stamp, _n, restored, seconds, names = match.groups()
            at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").astimezone()  # logging's local time
            partitions = {
                (n.rsplit("[", 1)[0], int(n.rsplit("[", 1)[1][:-1])) for n in re.findall(r"'([^']+)'", names)
            }
            found.append(
                {
                    "at": at.timestamp(),
                    "partitions": partitions,
                    "restored": int(restored),
                    "restore_s": float(seconds),
                }
            )
    return found


def wait_for(condition: Any, timeout_s: float, what: str) -> float:
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < timeout_s, f"{what}: not within {timeout_s:.0f} s"
        time.sleep(0.25)
    return time.monotonic() - began


def recovered_at(probe: LagProbe, after: float, partitions: set[TP], busy: set[TP]) -> float | None:
    """The first sample after ``after`` at which ``busy`` partitions were committed past their
    offsets at ``after`` and every one of ``partitions`` has a time lag <= CURRENT_S."""
    samples = probe.snapshot()
    before = [s for s in samples if s.t <= after]
    if not before:
        return None
    start = before[-1].committed[GROUP]
    for (t, lags), sample in zip(probe.time_lags(GROUP, samples), samples, strict=True):
        if t <= after:
            continue
        moved = all(sample.committed[GROUP].get(tp, 0) > start.get(tp, 0) for tp in busy)
        if moved and all(lags[tp] <= CURRENT_S for tp in partitions):
            return t
    return None


def test_three_workers_recover_from_a_kill_and_scale_back(fresh_kafka: Any, tmp_path: Path) -> None:
    bootstrap, truth = fresh_kafka.bootstrap_servers, tmp_path / "truth.csv"
    began = time.monotonic()
    logs = [tmp_path / f"worker-{i}.log" for i in range(4)]
    workers = [start(bootstrap, logs[i]) for i in range(3)]
    try:
        figures = scenario(bootstrap, truth, workers, logs)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    figures["test_wall_s"] = round(time.monotonic() - began, 1)
    print("\nworker-recovery figures:", json.dumps(figures, indent=1))


def current_owner(logs: list[Path], i: int) -> set[TP]:
    found = assignments(logs[i])
    return found[-1]["partitions"] if found else set()


def scenario(
    bootstrap: str, truth: Path, workers: list[subprocess.Popen[bytes]], logs: list[Path]
) -> dict[str, Any]:
    every = {(t, p) for t in INPUT_TOPICS for p in range(12)}
    balanced = lambda: all(len(current_owner(logs, i)) == 12 for i in range(3))  # noqa: E731
    figures: dict[str, Any] = {
        "group_formed_s": round(wait_for(balanced, 90, "3 workers own 12 partitions each"), 1)
    }
    assert set().union(*(current_owner(logs, i) for i in range(3))) == every
    probe = LagProbe(bootstrap, {GROUP: INPUT_TOPICS}).start()
    producer = PacedSimulation(
        regions=REGIONS, duration_s=SIM_HOURS * 3600, seed=SEED, bootstrap_servers=bootstrap,
        start=yesterday() + timedelta(hours=6), faults=FAULTS, truth_path=truth,
        speed=SIM_HOURS * 3600 / SIM_WALL_S,
    )  # fmt: skip
    producer.start()
    try:
        time.sleep(12)  # a baseline, with every worker busy
        figures["baseline_max_time_lag_s"] = round(
            probe.max_lag(GROUP, time.monotonic() - 8, time.monotonic())[0], 2
        )
        figures["kill"] = kill_one(probe, workers, logs)
        time.sleep(3)
        figures["scale_out"] = start_another(probe, bootstrap, workers, logs)
        assert producer.is_alive(), (
            "the scale-out outlasted the simulation: not under load (raise SIM_WALL_S)"
        )
        summary = producer.result(timeout_s=SIM_WALL_S + 120)
        figures["caught_up_after_input_s"] = round(probe.wait_caught_up(GROUP, 120), 1)
    finally:
        probe.stop()
    for i, worker in enumerate(workers):
        if i == figures["kill"]["worker"]:
            continue
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, logs[i].read_text()[-3000:]
    figures["messages"] = summary.messages
    figures["events_per_worker"] = [
        summaries(log)[0]["events"] if summaries(log) else None for log in logs
    ]  # the killed one printed nothing
    figures["simulation_wall_s"] = round(summary.wall_s, 1)
    assert figures["kill"]["recovery_s"] < RECOVERY_BOUND_S
    assert figures["scale_out"]["recovery_s"] < RECOVERY_BOUND_S
    assert_snapshots_equal_truth(bootstrap, read_truth(truth))
    return figures


def kill_one(probe: LagProbe, workers: list[subprocess.Popen[bytes]], logs: list[Path]) -> dict[str, Any]:
    high = probe.high()
    owned = [current_owner(logs, i) for i in range(3)]
    traffic = [sum(high.get(tp, 0) for tp in parts if tp[0] == CONTACT_TOPIC) for parts in owned]
    victim = max(range(3), key=traffic.__getitem__)  # the worker with the most contact traffic
    partitions = owned[victim]
    busy = {tp for tp in partitions if tp[0] == CONTACT_TOPIC and high.get(tp, 0) > 0}
    assert busy, f"the victim owns no busy partition: {sorted(partitions)}"
    killed_wall, killed = time.time(), time.monotonic()
    workers[victim].send_signal(signal.SIGKILL)
    workers[victim].wait()
    wait_for(
        lambda: recovered_at(probe, killed, partitions, busy) is not None, 120, "recovery after the kill"
    )
    recovered = recovered_at(probe, killed, partitions, busy)
    assert recovered is not None
    takeover = [a for i in range(3) if i != victim for a in assignments(logs[i]) if a["at"] >= killed_wall]
    assert takeover, "no surviving worker logged a new assignment"
    first = min(a["at"] for a in takeover)
    new_owner = [a for a in takeover if a["partitions"] & busy]
    return {
        "worker": victim,
        "partitions_owned": len(partitions),
        "busy_contact_partitions": sorted(p for _, p in busy),
        "detected_and_reassigned_s": round(first - killed_wall, 2),
        "restore_s": max(a["restore_s"] for a in new_owner),
        "checkpoints_restored": max(a["restored"] for a in new_owner),
        "recovery_s": round(recovered - killed, 2),
        "max_time_lag_s": round(probe.max_lag(GROUP, killed, recovered, partitions)[0], 2),
    }


def start_another(
    probe: LagProbe, bootstrap: str, workers: list[subprocess.Popen[bytes]], logs: list[Path]
) -> dict[str, Any]:
    started_wall, started = time.time(), time.monotonic()
    workers.append(start(bootstrap, logs[3]))
    wait_for(lambda: len(current_owner(logs, 3)) > 0, 90, "the new worker owns partitions")
    joined = assignments(logs[3])[-1]
    mine = joined["partitions"]
    busy = {tp for tp in mine if tp[0] == CONTACT_TOPIC and probe.high().get(tp, 0) > 0}
    every = {(t, p) for t in INPUT_TOPICS for p in range(12)}
    assigned_mono = started + (joined["at"] - started_wall)
    wait_for(
        lambda: recovered_at(probe, assigned_mono, every, busy) is not None, 120, "current after scale-out"
    )
    recovered = recovered_at(probe, assigned_mono, every, busy)
    assert recovered is not None
    return {
        "partitions_taken": len(mine),
        "joined_after_start_s": round(joined["at"] - started_wall, 2),
        "restore_s": joined["restore_s"],
        "checkpoints_restored": joined["restored"],
        "recovery_s": round(recovered - started, 2),
        "max_time_lag_s": round(probe.max_lag(GROUP, started, recovered)[0], 2),
    }
