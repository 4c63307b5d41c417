"""The HistoryStore port: what the sink, migrations and reports need from ClickHouse.

Two adapters implement it and pass one contract suite (tests/contract/test_history_store.py):
ClickHouseDriverStore (a server, native protocol, clickhouse-driver) and ChdbStore
(embedded chdb). Rows go in as Python values: str, int, float, lists, and aware
UTC datetimes for DateTime columns; query results come back the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol


class HistoryError(RuntimeError):
    """A history operation failed; the message names the statement or table."""


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
