"""History write throughput: rows/s into ClickHouse 18.16 (clickhouse-driver) and chdb, batches of 10k.

    .venv/bin/python bench/bench_history.py [--hours 3] [--batch 10000] [--json]

Builds the rows of `--hours` of simulated traffic for all 67 regions (contact, agent
and survey events, as the history sink writes them), then inserts them through the
HistoryStore port into a fresh Debian clickhouse-server 18.16 and into chdb, and in
the same run the raw ceiling for the server: clickhouse-driver `INSERT ... VALUES`
of the same rows into a plain MergeTree with the same columns (no ReplacingMergeTree,
no port). Prints rows/s and the ratio to the ceiling. Target (issue 6): >= 200k
rows/s into the server. Rows carry DateTime columns as epoch seconds, as the sink's do.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from streams.history.chdb_store import ChdbStore
from streams.history.clickhouse_store import ClickHouseDriverStore
from streams.history.event_rows import TABLE_OF_TOPIC, event_row
from streams.history.migrate import migrate
from streams.history.store import HistoryStore, InsertPipeline
from streams.services.clickhouse import ClickHouseServer
from streams.simulator import SimConfig, Simulation
from streams.simulator.output import materialise
from streams.simulator.run import topic_of

console = Console(stderr=True)


def build_rows(hours: float) -> dict[str, list[tuple[Any, ...]]]:
    sim = Simulation(SimConfig(), seed=2, start=datetime(2026, 5, 11, 6, tzinfo=UTC), duration_s=hours * 3600)
    ingested = int(time.time())
    rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for batch in sim.batches():
        for offset, item in enumerate(batch):
            topic = topic_of(item)
            row = event_row(topic, materialise(item, sim.prefix).event, 0, offset, ingested)
            if row is not None:
                rows[TABLE_OF_TOPIC[topic][0]].append(row)
    return rows


def insert_all(
    store: HistoryStore, rows: dict[str, list[tuple[Any, ...]]], batch: int, threads: int = 1
) -> float:
    """Rows/s through the port: one insert at a time, or ``threads`` in flight (InsertPipeline)."""
    columns = {table: cols for table, cols in TABLE_OF_TOPIC.values()}
    started = time.perf_counter()
    with InsertPipeline(store, threads) as pipeline:
        for table, table_rows in rows.items():
            for i in range(0, len(table_rows), batch):
                chunk = table_rows[i : i + batch]
                if threads == 1:
                    store.insert(f"{store.database}.{table}", columns[table], chunk)
                else:
                    pipeline.submit(f"{store.database}.{table}", columns[table], chunk)
        pipeline.drain()
    return sum(len(r) for r in rows.values()) / (time.perf_counter() - started)


def raw_ceiling(server: ClickHouseServer, rows: dict[str, list[tuple[Any, ...]]], batch: int) -> float:
    client = server.client()
    client.execute("CREATE DATABASE IF NOT EXISTS raw")
    columns = {table: cols for table, cols in TABLE_OF_TOPIC.values()}
    for table in rows:
        client.execute(f"DROP TABLE IF EXISTS raw.{table}")
        client.execute(
            f"CREATE TABLE raw.{table} AS ccpulse_bench.{table} ENGINE = MergeTree ORDER BY tuple()"
        )
    started = time.perf_counter()
    for table, table_rows in rows.items():
        for i in range(0, len(table_rows), batch):
            client.execute(
                f"INSERT INTO raw.{table} ({', '.join(columns[table])}) VALUES", table_rows[i : i + batch]
            )
    rate = sum(len(r) for r in rows.values()) / (time.perf_counter() - started)
    client.disconnect()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    console.print(f"building the rows of {args.hours} simulated hours ...")
    rows = build_rows(args.hours)
    total = sum(len(r) for r in rows.values())
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = ClickHouseServer(Path(tmp) / "clickhouse").start()
        try:
            store = ClickHouseDriverStore(server.host, server.tcp_port, database="ccpulse_bench")
            migrate(store)
            console.print(f"{total:,} rows into clickhouse-server {store.server_version()} ...")
            results["clickhouse-server 18.16, HistoryStore.insert"] = insert_all(store, rows, args.batch)
            results["clickhouse-server 18.16, InsertPipeline (2 in flight)"] = insert_all(
                store, rows, args.batch, threads=2
            )
            store.close()
            results["clickhouse-server 18.16, raw driver ceiling"] = raw_ceiling(server, rows, args.batch)
        finally:
            server.stop()
        chdb = ChdbStore(Path(tmp) / "chdb", database="ccpulse_bench")
        try:
            migrate(chdb)
            console.print(f"{total:,} rows into chdb {chdb.server_version()} ...")
            results["chdb, HistoryStore.insert"] = insert_all(chdb, rows, args.batch)
            results["chdb, InsertPipeline (2 in flight)"] = insert_all(chdb, rows, args.batch, threads=2)
        finally:
            chdb.close()
    ceiling = results["clickhouse-server 18.16, raw driver ceiling"]
    if args.json:
        print(
            json.dumps(
                {"rows": total, "batch": args.batch, "rows_per_s": {k: round(v) for k, v in results.items()}}
            )
        )
        return
    table = Table(title=f"history writes: {total:,} rows, batches of {args.batch:,}")
    table.add_column("path")
    table.add_column("rows/s", justify="right")
    table.add_column("vs server ceiling", justify="right")
    for label, rate in results.items():
        table.add_row(label, f"{rate:,.0f}", f"{rate / ceiling:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
