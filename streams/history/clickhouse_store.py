"""HistoryStore on a ClickHouse server over the native protocol (clickhouse-driver).

Synchronous: callers on an event loop run it in an executor. Works with Debian's
18.16 and with current servers.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from clickhouse_driver import Client
from clickhouse_driver.errors import Error as DriverError

from streams.history.store import HistoryError, checked_identifier

# The driver raises its own errors, but also raw socket errors when the server goes away.
_FAILURES = (DriverError, OSError, EOFError)


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # the server and our columns are UTC
    return value


class ClickHouseDriverStore:
    backend = "clickhouse"

    def __init__(
        self,
        host: str,
        port: int,
        database: str = "ccpulse",
        user: str = "default",
        password: str = "",
    ) -> None:
        self.database = checked_identifier(database)
        self._client = Client(host, port=port, user=user, password=password, connect_timeout=5)
        self._lock = threading.Lock()  # one connection; callers may share the store across threads
        self.execute(f"CREATE DATABASE IF NOT EXISTS {database}")

    def execute(self, sql: str) -> None:
        try:
            with self._lock:
                self._client.execute(sql)
        except _FAILURES as exc:
            msg = f"ClickHouse failed on {sql[:120]!r}: {exc}"
            raise HistoryError(msg) from exc

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        data = list(zip(*rows, strict=True))  # columnar: the driver skips its row -> column pass
        for column in data:
            if any(isinstance(v, datetime) and v.tzinfo is None for v in column if isinstance(v, datetime)):
                naive = next(v for v in column if isinstance(v, datetime) and v.tzinfo is None)
                msg = f"naive datetime {naive.isoformat()}: history takes aware UTC datetimes only"
                raise HistoryError(msg)
        try:
            with self._lock:
                self._client.execute(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES", data, columnar=True
                )
        except _FAILURES as exc:
            msg = f"ClickHouse insert into {table} failed: {exc}"
            raise HistoryError(msg) from exc
        return len(rows)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            with self._lock:
                rows = self._client.execute(sql)
        except _FAILURES as exc:
            msg = f"ClickHouse failed on {sql[:120]!r}: {exc}"
            raise HistoryError(msg) from exc
        return [tuple(_aware(v) for v in row) for row in rows]

    def server_version(self) -> str:
        return str(self.query("SELECT version()")[0][0])

    def close(self) -> None:
        with self._lock:
            self._client.disconnect()
