"""A consume-only Faust agent over the input topics: the benchmark's framework baseline.

    python bench/faust_baseline.py --bootstrap-servers HOST:PORT --expect N [--take 10000]

It reads the three input topics with faust-streaming (aiokafka transport) in
``stream.take(n, within=0.1)`` batches, does nothing with the values, and prints one
JSON line with the events/s from the first batch to the N-th event, then exits.
This is what DESIGN.md asks the KPI worker to be compared with (>= 80 % of it);
the worker itself uses a batched confluent-kafka consumer (see docs/kpi-engine.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid

import faust
from peak_rss import peak_rss_kb  # bench/ is on sys.path

from streams.wire.topics import INPUT_TOPICS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--take", type=int, default=10_000)
    args = parser.parse_args(argv)
    app = faust.App(
        f"faust-baseline-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{args.bootstrap_servers}",
        store="memory://",
        web_enabled=False,
        stream_buffer_maxsize=20_000,
        broker_max_poll_records=5_000,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        topic_disable_leader=True,
    )
    topic = app.topic(*INPUT_TOPICS, value_serializer="raw", key_serializer="raw")
    progress = {"n": 0, "t0": 0.0}

    @app.agent(topic)
    async def consume_only(stream):  # type: ignore[no-untyped-def]
        async for batch in stream.take(args.take, within=0.1):
            if not progress["t0"]:
                progress["t0"] = time.perf_counter()
            progress["n"] += len(batch)
            if progress["n"] >= args.expect:
                n, elapsed = progress["n"], time.perf_counter() - progress["t0"]
                rss = peak_rss_kb()
                result = {"events": n, "seconds": elapsed, "events_per_s": n / elapsed, "max_rss_kb": rss}
                print(json.dumps(result))
                sys.stdout.flush()
                os._exit(0)  # the measurement is done; Faust's shutdown is not part of it

    sys.argv = [sys.argv[0], "worker", "-l", "warn", "--without-web"]
    app.main()


if __name__ == "__main__":
    main()
