"""Load the simulator's ground-truth CSV (per region x channel x minute) into ``kpi_minute``.

The planner's history is ``kpi_minute``. Filling it from the raw events runs the whole
pipeline (simulate -> Kafka or file -> backfill SQL); the ground truth is, by the
project's contract tests, what that path computes, so benchmarks and tests that need
weeks of history load the truth directly (``ccpulse plan load-truth``). Version 1;
newer backfill versions supersede it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from streams.domain.kpi import COUNTERS
from streams.history.store import HistoryStore

# kpi_minute's columns: the domain counters but the two the table does not keep
KPI_COLUMNS = (
    "region", "channel", "bucket_start", "version",
    *(c for c in COUNTERS if c not in ("short_offered", "abandoned_within_threshold")),
)  # fmt: skip


def _rows(path: Path) -> Iterator[list[object]]:
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            yield [
                r["region"],
                r["channel"],
                int(r["minute_ms"]) // 1000,
                1,
                int(r["offered"]),
                int(r["answered"]),
                int(r["answered_within_target"]),
                int(r["abandoned"]) + int(r["short_abandoned"]),  # kpi_minute counts short ones in both
                int(r["short_abandoned"]),
                int(r["wait_ms_answered"]),
                int(r["handled"]),
                int(r["talk_ms"]),
                int(r["hold_ms"]),
                int(r["acw_ms"]),
                int(r["transferred"]),
                int(r["ended"]),
                int(r["resolved_first_line"]),
                int(r["surveys"]),
                int(r["score_sum"]),
                int(r["top_box"]),
            ]


def load_truth(store: HistoryStore, database: str, paths: list[Path], batch: int = 200_000) -> int:
    """Insert every truth row of ``paths`` into ``database.kpi_minute``; returns the row count."""
    total = 0
    for path in paths:
        rows: list[list[object]] = []
        for row in _rows(path):
            rows.append(row)
            if len(rows) >= batch:
                total += store.insert(f"{database}.kpi_minute", KPI_COLUMNS, rows)
                rows = []
        if rows:
            total += store.insert(f"{database}.kpi_minute", KPI_COLUMNS, rows)
    return total
