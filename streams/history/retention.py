"""Retention by dropping whole day partitions (no TTL on 18.16).

Every history table is partitioned by `toYYYYMMDD(<time>)`. `drop_old_partitions`
drops the partitions of the given tables whose day is older than the table's
retention (days, counted from `today` in UTC); a retention of None keeps forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from streams.history.store import HistoryStore, checked_identifier

DEFAULT_RETENTION_DAYS: Mapping[str, int | None] = {
    "contact_events": 400,
    "agent_events": 400,
    "survey_events": 400,
    "routing_decisions": 90,
    "dead_letters": 30,
    "kpi_minute": None,  # small (regions x channels x minutes) and the basis of every report
    "staffing_plan": None,  # small (regions x channels x 96 intervals a day): plan vs actual over years
}


@dataclass(frozen=True)
class DroppedPartition:
    table: str
    partition: str
    rows: int

    def as_row(self) -> dict[str, object]:
        return {"table": self.table, "partition": self.partition, "rows": self.rows}


def partitions(store: HistoryStore, table: str) -> dict[str, int]:
    """Active day partitions of a table -> row count."""
    rows = store.query(
        "SELECT partition, sum(rows) FROM system.parts "  # noqa: S608 - identifiers checked
        f"WHERE database = '{store.database}' AND table = '{checked_identifier(table)}' AND active "
        "GROUP BY partition ORDER BY partition"
    )
    return {str(p).strip("'"): int(n) for p, n in rows}


def drop_old_partitions(
    store: HistoryStore,
    today: date,
    retention_days: Mapping[str, int | None] = DEFAULT_RETENTION_DAYS,
    dry_run: bool = False,
) -> list[DroppedPartition]:
    dropped = []
    for table, days in retention_days.items():
        if days is None:
            continue
        if days < 1:
            msg = f"retention of {table} is {days} days; expected >= 1 (or None to keep forever)"
            raise ValueError(msg)
        cutoff = int((today - timedelta(days=days)).strftime("%Y%m%d"))
        for partition, rows in partitions(store, table).items():
            if partition.isdigit() and int(partition) < cutoff:
                if not dry_run:
                    store.execute(f"ALTER TABLE {store.database}.{table} DROP PARTITION {int(partition)}")
                dropped.append(DroppedPartition(table, partition, rows))
    return dropped
