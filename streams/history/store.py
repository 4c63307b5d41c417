"""The HistoryStore port: what the sink, migrations and reports need from ClickHouse.

Two adapters implement it and pass one contract suite (tests/contract/test_history_store.py):
ClickHouseDriverStore (a server, native protocol, clickhouse-driver) and ChdbStore
(embedded chdb). Rows go in as Python values: str, int, float, lists, and for
DateTime columns epoch seconds (int, what history rows carry) or aware UTC datetimes;
query results come back with aware UTC datetimes.

``InsertPipeline`` keeps up to N inserts in flight on threads, so the server digests
one batch while Python encodes the next (the 18.16 adapter holds a connection per
thread; chdb runs one statement at a time but builds its CSV outside its lock).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol


class HistoryError(RuntimeError):
    """A history operation failed; the message names the statement or table."""


def epoch_seconds(moment: datetime | int) -> int:
    """Epoch seconds of an aware datetime (or of seconds already); naive ones are refused."""
    if isinstance(moment, int):
        return moment
    if moment.tzinfo is None:
        msg = f"naive datetime {moment.isoformat()}: history takes aware UTC datetimes only"
        raise HistoryError(msg)
    return int(moment.timestamp())


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def checked_identifier(name: str) -> str:
    """A database/table name that is safe to put into SQL text, or a HistoryError."""
    if not _IDENTIFIER.match(name):
        msg = f"{name!r} is not a plain identifier (letters, digits, _; at most 64)"
        raise HistoryError(msg)
    return name


class HistoryStore(Protocol):
    backend: str
    database: str

    def execute(self, sql: str) -> None:
        """Run a statement that returns nothing (DDL, ALTER)."""

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
        """Insert rows (never as inline literals: FIELD-NOTES); returns the row count."""

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a SELECT; rows as tuples of Python values."""

    def server_version(self) -> str: ...

    def close(self) -> None: ...


class InsertPipeline:
    """Inserts on ``threads`` threads with at most ``threads`` in flight; ``drain`` waits for
    all and raises the first failure (as a HistoryError). Use as a context manager."""

    def __init__(self, store: HistoryStore, threads: int = 2) -> None:
        self._store = store
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="history-insert")
        self._slots = threading.BoundedSemaphore(threads)
        self._futures: list[Future[int]] = []

    def submit(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self._slots.acquire()  # back-pressure: the caller waits while every thread is busy
        try:
            future = self._pool.submit(self._store.insert, table, columns, rows)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        self._futures.append(future)

    def drain(self) -> int:
        """Wait for every submitted insert; the rows written, or the first failure."""
        futures, self._futures = self._futures, []
        written, failure = 0, None
        for future in futures:
            try:
                written += future.result()
            except HistoryError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        return written

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> InsertPipeline:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
