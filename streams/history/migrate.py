"""Versioned history migrations: streams/history/migrations/NNNN_name.sql, applied in order.

Applied versions are recorded in `<database>.schema_migrations` with a checksum; a
migration edited after it was applied is an error (write a new one instead). A
file may hold several statements separated by `;` at the end of a line; `{database}`
is replaced by the target database. Applied by `ccpulse history migrate`, never by
an init script.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files

from streams.history.store import HistoryError, HistoryStore

FILE_PATTERN = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def statements(self, database: str) -> list[str]:
        text = "\n".join(line for line in self.sql.splitlines() if not line.strip().startswith("--"))
        parts = re.split(r";\s*$", text, flags=re.MULTILINE)
        return [p.strip().replace("{database}", database) for p in parts if p.strip()]


@dataclass(frozen=True)
class MigrationResult:
    version: int
    name: str
    status: str  # applied | already applied

    def as_row(self) -> dict[str, object]:
        return {"version": self.version, "name": self.name, "status": self.status}


def load_migrations() -> list[Migration]:
    folder = files("streams.history") / "migrations"
    migrations = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        match = FILE_PATTERN.match(entry.name)
        if match:
            migrations.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        msg = f"duplicate migration versions in {versions}"
        raise HistoryError(msg)
    return migrations


def migrate(store: HistoryStore, migrations: list[Migration] | None = None) -> list[MigrationResult]:
    db = store.database
    store.execute(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
        "(version UInt32, name String, checksum String, applied_at DateTime('UTC')) "
        "ENGINE = MergeTree ORDER BY version"
    )
    # db is a checked identifier (checked_identifier in both stores)
    recorded = store.query(f"SELECT version, checksum FROM {db}.schema_migrations")  # noqa: S608
    applied = {int(v): str(c) for v, c in recorded}
    results = []
    for migration in migrations if migrations is not None else load_migrations():
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                msg = (
                    f"migration {migration.version:04d}_{migration.name} changed after it was applied "
                    f"(checksum {applied[migration.version]} -> {migration.checksum}): add a new migration"
                )
                raise HistoryError(msg)
            results.append(MigrationResult(migration.version, migration.name, "already applied"))
            continue
        for statement in migration.statements(db):
            store.execute(statement)
        store.insert(
            f"{db}.schema_migrations",
            ["version", "name", "checksum", "applied_at"],
            [
                (
                    migration.version,
                    migration.name,
                    migration.checksum,
                    datetime.now(UTC).replace(microsecond=0),
                )
            ],
        )
        results.append(MigrationResult(migration.version, migration.name, "applied"))
    return results
