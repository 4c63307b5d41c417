"""Every record the full worker publishes on a simulated replay, digested per topic (a check, not a timing).

    .venv/bin/python bench/output_digest.py [--hours 1] [--regions 67] [--seed 7] [--out FILE]
                                            [--routing-max-wait 20]

Simulates ``--hours`` of the first ``--regions`` regions (a Monday from 08:00 UTC, as
bench/bench_queue_state.py), runs the full worker (KPIs, snapshots, queue state, routing) over
it on the in-memory broker (decisions wait for every simulated region's state, at most
``--routing-max-wait`` s of wall time: a cold start or the end of the traffic then does not
depend on how fast the table thread reads) and prints, per output topic, the record count and a SHA-256 over
the records in (partition, offset) order: key, headers and the decoded value, with the
snapshots' wall-clock ``emitted_at_ms`` left out. Two source trees give the same digests when
they publish the same records in the same order: run it from a checkout of the code before a
change with ``PYTHONPATH=<that tree>`` and compare (docs/kpi-engine.md, "Routing cost").
``--out`` also writes every routing decision and queue-state record as JSON lines, to diff.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_queue_state import _broker  # bench/ is on sys.path

from streams.domain.regions import region_codes
from streams.engine import memory_cluster
from streams.jobs.worker import KpiWorker, WorkerOptions
from streams.simulator import run
from streams.wire.codec import Codec
from streams.wire.topics import DECISIONS_TOPIC, QUEUE_STATE_TOPIC, SNAPSHOT_TOPIC

OUTPUTS = (DECISIONS_TOPIC, QUEUE_STATE_TOPIC, SNAPSHOT_TOPIC)
WALL_CLOCK_FIELDS = ("emitted_at_ms",)


def digests(name: str, codec: Codec, out: Path | None) -> dict[str, Any]:
    cluster = memory_cluster.cluster(name)
    result: dict[str, Any] = {}
    lines = out.open("w") if out is not None else None
    try:
        for topic in OUTPUTS:
            sha, count = hashlib.sha256(), 0
            for p, log in enumerate(cluster.topics[topic].partitions):
                for offset, record in enumerate(log):
                    value = {k: v for k, v in codec.decode(topic, record.value).items()
                             if k not in WALL_CLOCK_FIELDS}  # fmt: skip
                    headers = [(k, v) for k, v in record.headers or () if k != "bench-batch"]
                    text = json.dumps([p, record.key, headers, value], sort_keys=True, default=repr)
                    sha.update(text.encode())
                    count += 1
                    if lines is not None and topic != SNAPSHOT_TOPIC:
                        lines.write(f"{topic} {p} {offset} {text}\n")
            result[topic] = {"records": count, "sha256": sha.hexdigest()}
    finally:
        if lines is not None:
            lines.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--regions", type=int, default=67)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--routing-max-wait", type=float, default=20.0)
    args = parser.parse_args()
    regions = tuple(sorted(region_codes()))[: args.regions]
    codec = Codec.pinned(known_regions=region_codes())
    with tempfile.TemporaryDirectory() as tmp:
        sim = Path(tmp) / "sim.bin"
        start = datetime(2026, 11, 2, 8, tzinfo=UTC)  # a Monday
        run(regions=regions, duration_s=args.hours * 3600, seed=args.seed, out="file", path=sim, start=start)
        config, name, produced = _broker(sim)
        try:
            options = WorkerOptions(
                group_id=f"digest-{uuid.uuid4().hex[:6]}", app_id="digest", routing_regions=regions,
                routing_max_wait_s=args.routing_max_wait,
            )  # fmt: skip
            stats = KpiWorker(config, codec, options).run(threading.Event(), idle_exit_s=1.0)
            assert stats.events == produced, (stats.events, produced)
            result = {"events": stats.events, "decisions": stats.decisions, **digests(name, codec, args.out)}
        finally:
            memory_cluster.forget(name)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
