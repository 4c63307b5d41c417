"""The stream-engine benchmark (issue 16): every candidate on the same data, in one run.

    .venv/bin/python bench/bench_kpi.py [--hours 4] [--quick] [--rate 5000] [--latency-seconds 30]
                                        [--commit-interval 0.25] [--json]

Needs the bench extra (`pip install -e '.[dev,bench]'`). One fresh single-node Apache
Kafka 4.1.1; `--hours` of simulated traffic of all 67 regions (0.1 % duplicates and
late events). Each path is a child process reading every message from the start with its
own group (bench/kpi_paths.py, bench/faust_baseline.py, bench/quix_kpi_job.py):

  raw ceiling          confluent-kafka consume(10000) + codec decode, no processing
  Faust consume-only   faust-streaming agent, stream.take(10000, within=0.1), no work
  current worker       streams/jobs/worker.py, full job (KPIs, snapshots, queue state, routing,
                       checkpoints); also with routing off (what the Quix job does)
  Quix job             bench/quix_kpi_job.py, exactly-once, at --commit-interval and at Quix's
                       default 5 s
  x2                   two processes of the current worker / of the Quix job in one group

Events/s from each process's first to its last processed message (two processes: the
sum of events over the first start to the last end). Faithfulness: the Quix job's final
MINUTE counters against the current worker's. Latency at --rate live events/s for the
current worker and the Quix job (bench/kpi_latency.py). Progress goes to stderr; the
table (or --json) to stdout. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic
from kpi_latency import measure
from kpi_paths import final_minutes, mismatches
from rich.console import Console
from rich.table import Table

from streams.codec import Codec
from streams.jobs.worker import SNAPSHOT_TOPIC
from streams.services.kafka import KafkaCluster
from streams.services.topics import apply_topics
from streams.simulator import run
from streams.simulator.config import Faults

BENCH = Path(__file__).resolve().parent
console = Console(stderr=True)


def _json_line(text: str) -> dict[str, Any]:
    found = [line[line.index('{"events"') :] for line in text.splitlines() if '{"events"' in line]
    if not found:
        msg = f"no result line in: {text[-2000:]}"
        raise RuntimeError(msg)
    return json.loads(found[-1].strip())  # type: ignore[no-any-return]


def children(commands: list[list[str]], timeout_s: float = 900) -> dict[str, Any]:
    """Run the commands at once; events/s over the first start to the last end, peak RSS (MB)."""
    started = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands
    ]
    results = []
    for child in started:
        out, err = child.communicate(timeout=timeout_s)
        results.append(_json_line(out + err))  # Faust prints through its logger, on stderr
    events = sum(r["events"] for r in results)
    if "events_per_s" in results[0]:  # the Faust baseline times itself
        rate = results[0]["events_per_s"]
    else:
        rate = events / (max(r["t_last"] for r in results) - min(r["t_first"] for r in results))
    return {
        "events": events,
        "events_per_s": rate,
        "processes": len(results),
        "peak_rss_mb": round(max(r["max_rss_kb"] for r in results) / 1024),
    }


def quix_command(
    bootstrap: str, group: str, state: Path, commit_interval: float, topic: str, *extra: str
) -> list[str]:
    return [
        sys.executable,
        str(BENCH / "quix_kpi_job.py"),
        "--bootstrap-servers",
        bootstrap,
        "--group",
        group,
        "--state-dir",
        str(state),
        "--commit-interval",
        str(commit_interval),
        "--snapshot-topic",
        topic,
        *extra,
    ]


def worker_command(bootstrap: str, group: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(BENCH / "kpi_paths.py"),
        "worker",
        "--bootstrap-servers",
        bootstrap,
        "--group",
        group,
        *extra,
    ]


def create_topics(bootstrap: str, names: list[str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(n, 12, 1) for n in names])
    for future in futures.values():
        future.result()


def throughput(bootstrap: str, expect: int, tmp: Path, ci: float) -> tuple[dict[str, dict], int]:
    e = str(expect)
    q = [f"bench.quix.{i}.snapshots" for i in range(5)]
    create_topics(bootstrap, q)
    paths: dict[str, dict] = {}
    steps: list[tuple[str, list[list[str]]]] = [
        (
            "raw",
            [
                [
                    sys.executable,
                    str(BENCH / "kpi_paths.py"),
                    "raw",
                    "--bootstrap-servers",
                    bootstrap,
                    "--expect",
                    e,
                ]
            ],
        ),
        (
            "faust_consume_only",
            [
                [
                    sys.executable,
                    str(BENCH / "faust_baseline.py"),
                    "--bootstrap-servers",
                    bootstrap,
                    "--expect",
                    e,
                ]
            ],
        ),
        ("worker", [worker_command(bootstrap, "bench-worker", "--expect", e)]),
        ("worker_no_routing", [worker_command(bootstrap, "bench-worker-nr", "--expect", e, "--no-routing")]),
        ("worker_transactions", [worker_command(bootstrap, "bench-wtx", "--expect", e, "--transactions")]),
        ("quix", [quix_command(bootstrap, "bench-quix", tmp / "q0", ci, q[0], "--expect", e)]),
        (
            "quix_default_commit",
            [quix_command(bootstrap, "bench-quix-5s", tmp / "q1", 5.0, q[1], "--expect", e)],
        ),
        ("worker_x2", [worker_command(bootstrap, "bench-worker-x2", "--idle-exit", "5") for _ in range(2)]),
        (
            "quix_x2",
            [
                quix_command(bootstrap, "bench-quix-x2", tmp / f"q2{i}", ci, q[2], "--idle-exit", "5")
                for i in range(2)
            ],
        ),
    ]
    differ = -1
    for name, commands in steps:
        console.print(f"{name} ...")
        paths[name] = children(commands)
        console.print(f"  {paths[name]['events']:,} events, {paths[name]['events_per_s']:,.0f}/s")
        if name == "quix":
            codec = Codec.pinned()
            ours, theirs = (
                final_minutes(bootstrap, SNAPSHOT_TOPIC, codec),
                final_minutes(bootstrap, q[0], codec),
            )
            bad = mismatches(ours, theirs)
            differ = len(bad)
            console.print(
                f"  faithfulness: {len(ours):,} worker / {len(theirs):,} Quix MINUTE keys, {differ} differ"
            )
            for key in bad[:5]:
                console.print(f"    {key}: worker {ours.get(key)} quix {theirs.get(key)}")
    return paths, differ


def latencies(bootstrap: str, tmp: Path, args: argparse.Namespace) -> dict[str, dict]:
    create_topics(bootstrap, ["bench.quix.live.snapshots", "bench.quix.live5.snapshots"])
    out: dict[str, dict] = {}
    runs = [
        (
            "worker",
            worker_command(
                bootstrap,
                "bench-live-w",
                "--latest",
                "--idle-exit",
                "20",  # counts from its assignment too: it must outlast the join wait below
                "--latency-out",
                str(tmp / "lw.json"),
            ),
            tmp / "lw.json",
            SNAPSHOT_TOPIC,
            10.0,
        ),
        (
            "quix",
            quix_command(
                bootstrap,
                "bench-live-q",
                tmp / "lq",
                args.commit_interval,
                "bench.quix.live.snapshots",
                "--latest",
                "--idle-exit",
                "4",
                "--latency-out",
                str(tmp / "lq.json"),
            ),
            tmp / "lq.json",
            "bench.quix.live.snapshots",
            25.0,
        ),
        (
            "quix_default_commit",
            quix_command(
                bootstrap,
                "bench-live-q5",
                tmp / "lq5",
                5.0,
                "bench.quix.live5.snapshots",
                "--latest",
                "--idle-exit",
                "6",
                "--latency-out",
                str(tmp / "lq5.json"),
            ),
            tmp / "lq5.json",
            "bench.quix.live5.snapshots",
            25.0,
        ),
    ]
    for name, command, file, topic, join_s in runs:
        console.print(f"latency {name} at {args.rate}/s for {args.latency_seconds} s ...")
        out[name] = measure(command, file, bootstrap, topic, args.rate, args.latency_seconds, join_s)
        console.print(f"  {out[name]}")
    return out


ROWS = [
    ("raw", "raw ceiling: confluent-kafka consume(10000) + codec decode"),
    ("faust_consume_only", "Faust consume-only agent, take(10000, within=0.1)"),
    ("worker", "current worker, full job (KPIs, snapshots, queue state, routing)"),
    ("worker_no_routing", "current worker, routing off"),
    ("worker_transactions", "current worker, full job, --transactions (commit 0.25 s, checkpoint 2 s)"),
    ("quix", "Quix job, exactly-once, commit every {ci} s"),
    ("quix_default_commit", "Quix job, exactly-once, commit every 5 s (default)"),
    ("worker_x2", "current worker, 2 processes"),
    ("quix_x2", "Quix job, 2 processes, commit every {ci} s"),
]


def report(result: dict[str, Any], ci: float) -> None:
    paths, raw, worker = result["paths"], result["paths"]["raw"], result["paths"]["worker"]
    table = Table(
        title=f"stream engines on Apache Kafka 4.1.1, {result['messages']:,} messages, "
        f"load average {result['load_before']} -> {result['load_after']}"
    )
    for column in ("path", "events/s", "vs raw", "vs worker", "peak RSS MB"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for key, label in ROWS:
        if key in paths:
            rate = paths[key]["events_per_s"]
            table.add_row(
                label.format(ci=ci),
                f"{rate:,.0f}",
                f"{rate / raw['events_per_s']:.2f}",
                f"{rate / worker['events_per_s']:.2f}",
                str(paths[key]["peak_rss_mb"]),
            )
    table.add_row("Faust full KPI job", "not measured in this run", "", "", "")
    out = Console()
    out.print(table)
    out.print(f"faithfulness: {result['mismatching_minute_buckets']} MINUTE buckets differ (Quix vs worker)")
    lat = Table(title=f"latency at {result['rate']:,} live events/s, ms")
    for column in (
        "job",
        "achieved/s",
        "state p50",
        "state p99",
        "readable p50",
        "readable p99",
        "readable max",
    ):
        lat.add_column(column, justify="left" if column == "job" else "right")
    for name, figures in result["latency"].items():
        s, r = figures["state"], figures["readable"]
        lat.add_row(
            name,
            f"{figures['achieved_rate']:,}",
            str(s["p50_ms"]),
            str(s["p99_ms"]),
            str(r["p50_ms"]),
            str(r["p99_ms"]),
            str(r["max_ms"]),
        )
    out.print(lat)
    quix, w = paths["quix"]["events_per_s"], worker["events_per_s"]
    p99 = result["latency"].get("quix", {}).get("state", {}).get("p99_ms")
    out.print(
        f"rule: Quix / worker = {quix / w:.2f} (>= 0.8 needed); Quix p99 event -> state {p99} ms, "
        f"-> readable snapshot {result['latency'].get('quix', {}).get('readable', {}).get('p99_ms')} ms "
        f"(<= 500 needed)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--quick", action="store_true", help="1 simulated hour, 15 s of latency")
    parser.add_argument("--rate", type=int, default=5_000)
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--commit-interval", type=float, default=0.25, help="the Quix job's (Quix: 5 s)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--latency-only", action="store_true", help="only the live latency runs (JSON)")
    args = parser.parse_args()
    if args.quick:
        args.hours, args.latency_seconds = 1.0, 15.0
    load_before = os.getloadavg()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cluster = KafkaCluster(tmp / "kafka", nodes=1).start()
        try:
            bootstrap = cluster.bootstrap_servers
            apply_topics(bootstrap)
            if args.latency_only:
                print(json.dumps({"load_before": load_before, "latency": latencies(bootstrap, tmp, args),
                                  "load_after": os.getloadavg()}))  # fmt: skip
                return
            console.print(f"simulating {args.hours} h of 67 regions into Kafka at {bootstrap} ...")
            busy = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)  # 09:00 in Moscow
            faults = Faults(duplicate=0.001, late=0.001, late_max_s=300)
            summary = run(
                duration_s=args.hours * 3600,
                seed=1,
                out="kafka",
                bootstrap_servers=bootstrap,
                start=busy - timedelta(days=1),
                faults=faults,
            )
            console.print(f"{summary.messages:,} messages")
            paths, differ = throughput(bootstrap, summary.messages, tmp, args.commit_interval)
            lat = latencies(bootstrap, tmp, args)
        finally:
            cluster.stop()
    result = {
        "messages": summary.messages,
        "hours": args.hours,
        "commit_interval_s": args.commit_interval,
        "rate": args.rate,
        "paths": paths,
        "mismatching_minute_buckets": differ,
        "latency": lat,
        "load_before": " ".join(f"{x:.2f}" for x in load_before),
        "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "seconds": round(time.monotonic() - started),
    }
    for figures in paths.values():
        figures["vs_raw"] = round(figures["events_per_s"] / paths["raw"]["events_per_s"], 3)
        figures["vs_worker"] = round(figures["events_per_s"] / paths["worker"]["events_per_s"], 3)
        figures["events_per_s"] = round(figures["events_per_s"])
    if args.json:
        print(json.dumps(result))
    else:
        report(result, args.commit_interval)


if __name__ == "__main__":
    main()
