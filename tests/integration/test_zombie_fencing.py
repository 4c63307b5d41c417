"""A zombie worker cannot write after its partitions moved (issue 16: fencing).

Worker A (``--transactions``) owns every partition under a paced stream; it is frozen
(SIGSTOP) until its session times out and worker B takes its partitions over (restore
epoch + 1, recorded in the changelog). Then A carries on (SIGCONT) believing it still owns
them: it finishes its batch, produces snapshots and wants to checkpoint. With transactions
its commit carries its stale group generation, the coordinator refuses it, the transaction
is aborted and nothing A produced after the takeover is visible to a ``read_committed``
reader (librdkafka's default). Asserted on what downstream readers see:

- in each changelog partition, the restore epochs of the committed checkpoint records
  never go down in offset order (a stale checkpoint after B's would let the next owner
  take B's epoch again: docs/kpi-engine.md, "Snapshot versions");
- for each snapshot key, versions never go down in offset order (no stale snapshot after a
  newer one);
- every MINUTE snapshot equals the simulator's ground truth at the end.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support.lag_probe import PacedSimulation
from support.waiting import wait_until
from support.workers import (
    FAULTS,
    REGIONS,
    assert_snapshots_equal_truth,
    assignments,
    log_tail,
    read_truth,
    start_worker,
    wait_exit,
    yesterday,
)

from streams.engine.checkpoints import changelog_topic
from streams.engine.read_to_end import read_to_end
from streams.jobs.state import loads
from streams.jobs.windows import version_parts
from streams.wire.topics import SNAPSHOT_TOPIC

pytestmark = pytest.mark.kafka

GROUP = "ccpulse-kpi"
# the input of test_worker_recovery.py (its truth equality is established there)
SIM_HOURS, SIM_WALL_S, SEED = 6.0, 60.0, 31
WORKER_ARGS = ("--log-level", "info", "--transactions", "--idle-exit", "10")


def changelog_epochs(bootstrap: str) -> dict[int, list[int]]:
    """Partition -> restore epochs of its committed checkpoint records, in offset order."""
    found: dict[int, list[int]] = defaultdict(list)
    for message in read_to_end({"bootstrap.servers": bootstrap}, changelog_topic(GROUP)):
        found[int(message.partition())].append(loads(message.value()).epoch)  # type: ignore[arg-type]
    return dict(found)


def snapshot_versions(bootstrap: str) -> dict[bytes, list[int]]:
    from streams.wire.codec import Codec

    codec, found = Codec.pinned(), defaultdict(list)
    for message in read_to_end({"bootstrap.servers": bootstrap}, SNAPSHOT_TOPIC):
        found[message.key()].append(codec.decode(SNAPSHOT_TOPIC, message.value())["version"])
    return dict(found)


def owns_all(log: Path) -> bool:
    found = assignments(log)
    return bool(found) and len(found[-1]["partitions"]) == 36


def test_a_frozen_worker_cannot_write_after_its_partitions_moved(fresh_kafka: Any, tmp_path: Path) -> None:
    bootstrap, truth = fresh_kafka.bootstrap_servers, tmp_path / "truth.csv"
    log_a, log_b = tmp_path / "worker-a.log", tmp_path / "worker-b.log"
    a = start_worker(bootstrap, GROUP, log_a, WORKER_ARGS)
    b = None
    producer = PacedSimulation(
        regions=REGIONS, duration_s=SIM_HOURS * 3600, seed=SEED, bootstrap_servers=bootstrap,
        start=yesterday() + timedelta(hours=6), faults=FAULTS, truth_path=truth,
        speed=SIM_HOURS * 3600 / SIM_WALL_S,
    )  # fmt: skip
    try:
        wait_until(
            lambda: owns_all(log_a), 120, "worker A owns every partition", seen=lambda: log_tail([log_a])
        )
        producer.start()
        wait_until(
            lambda: len(changelog_epochs(bootstrap)) == 12 and snapshot_versions(bootstrap), 120,
            "A committed checkpoints of all 12 partitions and snapshots",
        )  # fmt: skip
        assert producer.is_alive(), "the input ended before A was frozen: raise SIM_WALL_S"
        os.kill(a.pid, signal.SIGSTOP)  # mid-stream: A holds processed, uncommitted work
        frozen_at = time.monotonic()
        b = start_worker(bootstrap, GROUP, log_b, WORKER_ARGS)
        wait_until(
            lambda: owns_all(log_b), 180, "B took every partition over", seen=lambda: log_tail([log_b])
        )
        wait_until(
            lambda: all(max(e) >= 2 for e in changelog_epochs(bootstrap).values()), 60,
            "B recorded its restore epochs", seen=lambda: changelog_epochs(bootstrap),
        )  # fmt: skip
        os.kill(a.pid, signal.SIGCONT)
        frozen_s = time.monotonic() - frozen_at
        still_streaming = producer.is_alive()
        producer.hurry()  # A is awake again: the rest of the input at full speed, same messages
        summary = producer.result(timeout_s=SIM_WALL_S + 180)
        code_b = wait_exit(b, 300)
        code_a = wait_exit(a, 300)
    finally:
        for process in (a, b):
            if process is not None and process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
                process.kill()
                process.wait()
    text_a = log_a.read_text()
    outcome = "fenced" if "fenced:" in text_a else "lost" if "partitions lost" in text_a else "neither"
    figures = {"frozen_s": round(frozen_s, 1), "a_exit": code_a, "a_outcome": outcome,
               "input_running_at_sigcont": still_streaming, "messages": summary.messages}  # fmt: skip
    print("\nzombie:", json.dumps(figures))
    assert code_b == 0, log_b.read_text()[-3000:]
    assert code_a in (0, 3) and outcome != "neither", text_a[-3000:]  # 3: exited fenced
    epochs = changelog_epochs(bootstrap)
    stale = {p: e for p, e in epochs.items() if any(x > y for x, y in zip(e, e[1:], strict=False))}
    assert stale == {}, f"a checkpoint with a lower epoch after a higher one: {stale}"
    versions = snapshot_versions(bootstrap)
    down = [k for k, v in versions.items() if any(x > y for x, y in zip(v, v[1:], strict=False))]
    assert down == [], f"{len(down)} snapshot keys whose version went down, e.g. " + "; ".join(
        f"{k!r}: (epoch, position sum) {[version_parts(v) for v in versions[k]][-12:]}" for k in down[:3]
    )
    assert_snapshots_equal_truth(bootstrap, read_truth(truth))
