"""HistoryStore on a ClickHouse server over the native protocol (clickhouse-driver).

Synchronous: callers on an event loop run it in an executor. Works with Debian's
18.16 and with current servers.
"""

from __future__ import annotations

import contextlib
import functools
import queue
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from clickhouse_driver import Client
from clickhouse_driver.errors import Error as DriverError

from streams.history.store import HistoryError, checked_identifier, epoch_seconds

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
        connections: int = 2,
    ) -> None:
        if connections < 1:
            msg = f"connections={connections}: need at least one"
            raise ValueError(msg)
        self.database = checked_identifier(database)
        # No session database in the handshake (the driver's default is `default`): 18.16
        # checks it against the user's allow_databases, so a user confined to ccpulse could
        # not even connect; every statement names its database instead.
        # A small pool: while the server digests one insert, another thread serialises the
        # next (the driver holds the GIL to encode, then waits on the socket without it).
        self._clients: queue.LifoQueue[Client] = queue.LifoQueue()
        for _ in range(connections):
            self._clients.put(
                Client(host, port=port, user=user, password=password, database="", connect_timeout=5)
            )
        self._connections = connections
        self._params = (host, port, database, user, password)
        self.execute(f"CREATE DATABASE IF NOT EXISTS {database}")

    def opener(self) -> Callable[[], ClickHouseDriverStore]:
        """A picklable factory of an equivalent store (for worker processes); the password
        travels inside it, so never log or print it."""
        host, port, database, user, password = self._params
        return functools.partial(ClickHouseDriverStore, host, port, database, user, password, 1)

    @contextlib.contextmanager
    def _client(self) -> Iterator[Client]:
        client = self._clients.get()  # blocks while every connection is in use
        try:
            yield client
        finally:
            self._clients.put(client)

    def execute(self, sql: str) -> None:
        try:
            with self._client() as client:
                client.execute(sql)
        except _FAILURES as exc:
            msg = f"ClickHouse failed on {sql[:120]!r}: {exc}"
            raise HistoryError(msg) from exc

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        # columnar: the driver skips its row -> column pass
        data: list[Sequence[Any]] = list(zip(*rows, strict=True))
        for i, column in enumerate(data):
            if datetime in set(map(type, column)):
                data[i] = [epoch_seconds(v) for v in column]  # ints skip the driver's pytz conversion
        try:
            with self._client() as client:
                client.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES", data, columnar=True)
        except _FAILURES as exc:
            msg = f"ClickHouse insert into {table} failed: {exc}"
            raise HistoryError(msg) from exc
        return len(rows)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            with self._client() as client:
                rows = client.execute(sql)
        except _FAILURES as exc:
            msg = f"ClickHouse failed on {sql[:120]!r}: {exc}"
            raise HistoryError(msg) from exc
        return [tuple(_aware(v) for v in row) for row in rows]

    def server_version(self) -> str:
        return str(self.query("SELECT version()")[0][0])

    def close(self) -> None:
        for _ in range(self._connections):
            self._clients.get().disconnect()
