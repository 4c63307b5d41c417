"""HistoryStore on chdb: ClickHouse embedded in the process, data in a local directory."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chdb import session

from streams.history.csv_rows import csv_payload
from streams.history.store import HistoryError, checked_identifier

_QUERY_SETTINGS = "output_format_json_quote_64bit_integers = 0"


def _from_json_value(value: Any, column_type: str) -> Any:
    if column_type.startswith("DateTime") and isinstance(value, str):
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return value


class ChdbStore:
    backend = "chdb"

    def __init__(self, path: Path, database: str = "ccpulse") -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.database = checked_identifier(database)
        self._session = session.Session(str(path))
        self._lock = threading.Lock()  # one chdb session, used from executor threads
        self.execute(f"CREATE DATABASE IF NOT EXISTS {database}")

    def _run(self, sql: str, fmt: str = "CSV") -> Any:
        with self._lock:
            try:
                return self._session.query(sql, fmt)
            except Exception as exc:
                msg = f"chdb failed on {sql[:120]!r}: {exc}"
                raise HistoryError(msg) from exc

    def execute(self, sql: str) -> None:
        self._run(sql)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        return self.insert_csv(table, columns, csv_payload(rows), len(rows))

    def insert_csv(self, table: str, columns: Sequence[str], payload: str, count: int) -> int:
        """Rows already encoded by ``csv_payload`` (elsewhere, e.g. in a worker process)."""
        self._run(f"INSERT INTO {table} ({', '.join(columns)}) FORMAT CSV\n{payload}")
        return count

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        result = self._run(f"{sql.rstrip().rstrip(';')} SETTINGS {_QUERY_SETTINGS}", "JSONCompact")
        raw = result.bytes()
        if not raw:
            return []
        body = json.loads(raw)
        types = [m["type"] for m in body["meta"]]
        return [
            tuple(_from_json_value(v, t) for v, t in zip(row, types, strict=True)) for row in body["data"]
        ]

    def server_version(self) -> str:
        return str(self.query("SELECT version()")[0][0])

    def close(self) -> None:
        with self._lock:
            self._session.close()
