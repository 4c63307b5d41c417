"""Shared helpers of the KPI worker tests: the simulated day, its truth, worker processes and their logs."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from streams.jobs.snapshot_reader import latest_snapshots
from streams.simulator import SimConfig, run
from streams.simulator.config import Faults
from streams.wire.codec import Codec
from support.truth import TRUTH_TO_SNAPSHOT

KPI_GROUP = "ccpulse-kpi"


REGIONS = ("RU-MOW", "RU-KGD", "RU-KAM", "RU-NVS", "RU-KHA", "RU-OMS")  # partitions 1, 3, 5, 8, 9


FAULTS = Faults(duplicate=0.01, late=0.01, malformed=0.002, late_min_s=30, late_max_s=540)


def yesterday() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)


def read_truth(path: Path) -> dict[str, dict[str, int]]:
    with path.open() as f:
        return {
            f"{r['region']}|{r['channel']}|MINUTE|{r['minute_ms']}": {
                s: int(r[t]) for t, s in TRUTH_TO_SNAPSHOT.items()
            }
            for r in csv.DictReader(f)
        }


def assert_snapshots_equal_truth(bootstrap: str, truth: dict[str, dict[str, int]]) -> None:
    snapshots = latest_snapshots({"bootstrap.servers": bootstrap}, Codec.pinned())
    minutes = {k: s for k, s in snapshots.items() if s["window"] == "MINUTE"}
    assert len(truth) > 1_000
    fields = TRUTH_TO_SNAPSHOT.values()
    wrong = {
        key: ({f: minutes[key][f] for f in fields} if key in minutes else None, truth.get(key))
        for key in set(truth) | set(minutes)
        if any(truth.get(key, {}).get(f, 0) != minutes.get(key, {}).get(f, 0) for f in fields)
    }
    assert not wrong, f"{len(wrong)} of {len(truth)} minutes differ, e.g. {list(wrong.items())[:2]}"
    for key, snapshot in minutes.items():  # the derived ratios agree with the sums
        if snapshot["service_level"] is not None:
            base = snapshot["answered"] + snapshot["abandoned"]
            assert abs(snapshot["service_level"] - snapshot["answered_within_threshold"] / base) < 1e-9, key


def simulate(bootstrap: str, truth: Path, hours: float, speed: float | None = None) -> Any:
    """With every edge shape on (overflow, second transfers, ended on hold, ENDED after an
    abandon, answers without a queue): DESIGN.md section 3's rules hold through Kafka."""
    return run(
        regions=REGIONS, duration_s=hours * 3600, seed=11, out="kafka", bootstrap_servers=bootstrap,
        start=yesterday(), faults=FAULTS, truth_path=truth, speed=speed,
        config=SimConfig().with_edge_shapes(),
    )  # fmt: skip


def start_worker(
    bootstrap: str, group: str, log: Path, options: tuple[str, ...] = ("--idle-exit", "10")
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "streams.cli", "worker", "--bootstrap-servers", bootstrap, "--group", group,
        "--metrics-port", "-1", "--checkpoint-interval", "0.5", *options,
    ]  # fmt: skip
    with log.open("ab") as out:  # the child has its own copy of the descriptor
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())


def summaries(log: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in log.read_text().splitlines() if line.startswith('{"event": "stopped"')
    ]


def wait_exit(process: subprocess.Popen[bytes], timeout_s: float = 180.0) -> int:
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


ASSIGNED = re.compile(
    r"^(\S+ \S+) INFO ccpulse\.engine\.loop assigned (\d+) partitions "
    r"\((\d+) checkpoints restored in ([\d.]+) s\): \[(.*)\]$"
)


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


def log_tail(logs: list[Path], lines: int = 3) -> dict[str, list[str]]:
    """The last lines of each worker log, for a failure message."""
    return {log.name: log.read_text().splitlines()[-lines:] for log in logs if log.exists()}
