"""Backfill: load recorded messages (a simulator file, a Kafka replay) into the raw history
tables in large batches, then compute the KPI minute buckets in SQL (kpi_sql.py).

Source-agnostic: takes (topic, value bytes) pairs. Messages that fail decoding are stored
in dead_letters with their reason (position = index in the source), never dropped, with
any raw identity in a decodable body withheld (streams/engine/dead_letters.py).
Re-running over the same source adds duplicate rows that collapse on merge and are
counted once by every KPI query (DISTINCT / uniqExact), so a retried backfill is safe.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from streams.domain.errors import InvalidEvent
from streams.engine.dead_letters import DeadLetterSanitiser
from streams.history.event_rows import COLUMNS_OF_TABLE, TABLE_OF_TOPIC, event_row
from streams.history.kpi_sql import recompute_kpi_minutes
from streams.history.store import HistoryStore
from streams.wire.codec import Codec


@dataclass
class BackfillStats:
    messages: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    load_seconds: float = 0.0
    kpi_seconds: float = 0.0
    kpi_buckets: int = 0

    @property
    def rows_per_s(self) -> float:
        return self.messages / self.load_seconds if self.load_seconds else 0.0


def history_row(
    codec: Codec, topic: str, value: bytes, index: int, ingested_s: int
) -> tuple[str, tuple[Any, ...] | None]:
    """(table, row) of one recorded message; an undecodable one as a dead_letters row
    (position = ``index`` in the source). Row None: a record history does not keep."""
    try:
        table = TABLE_OF_TOPIC[topic][0]
        return table, event_row(topic, codec.decode(topic, value), 0, index, ingested_s)
    except (InvalidEvent, KeyError) as exc:
        reason = exc.reason if isinstance(exc, InvalidEvent) else "unknown_topic"
        detail = exc.detail if isinstance(exc, InvalidEvent) else f"no history table for {topic}"
        # no key here: identities of a decodable body are withheld (streams/engine/dead_letters.py)
        clean = DeadLetterSanitiser(codec).clean(topic, value, None, detail)
        row = (topic, 0, index, "", base64.b64encode(clean.value).decode(), reason, clean.detail, "backfill",
               ingested_s, ingested_s * 1000)  # fmt: skip
        return "dead_letters", row


def load(
    codec: Codec,
    messages: Iterable[tuple[int, str, bytes]],
    ingested_s: int,
    batch_rows: int,
    write: Callable[[str, list[tuple[Any, ...]]], object],
    on_flush: Callable[[BackfillStats], None] | None = None,
) -> BackfillStats:
    """Decode (position, topic, value) messages into history rows and hand them to
    ``write(table, rows)`` in batches of ``batch_rows``; ``on_flush`` after each batch."""
    stats = BackfillStats()
    pending: dict[str, list[tuple[Any, ...]]] = {}
    pending_rows = 0

    def flush() -> None:
        nonlocal pending_rows
        for table, rows in pending.items():
            write(table, rows)
            stats.rows[table] = stats.rows.get(table, 0) + len(rows)
        pending.clear()
        pending_rows = 0
        if on_flush is not None:
            on_flush(stats)

    for index, topic, value in messages:
        stats.messages += 1
        table, row = history_row(codec, topic, value, index, ingested_s)
        if table == "dead_letters":
            stats.dead_letters += 1
        if row is None:  # kept out of history (a rolling-window snapshot)
            continue
        pending.setdefault(table, []).append(row)
        pending_rows += 1
        if pending_rows >= batch_rows:
            flush()
    flush()
    return stats


def backfill(
    store: HistoryStore,
    codec: Codec,
    messages: Iterable[tuple[str, bytes]],
    batch_rows: int = 200_000,
    on_progress: Callable[[int], None] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BackfillStats:
    ingested_s = int(now().replace(microsecond=0).timestamp())
    started = time.perf_counter()
    stats = load(
        codec,
        ((index, topic, value) for index, (topic, value) in enumerate(messages)),
        ingested_s,
        batch_rows,
        lambda table, rows: store.insert(f"{store.database}.{table}", COLUMNS_OF_TABLE[table], rows),
        None if on_progress is None else lambda s: on_progress(s.messages),
    )
    stats.load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    stats.kpi_buckets = recompute_kpi_minutes(store, version=ingested_s)
    stats.kpi_seconds = time.perf_counter() - started
    return stats
