"""Versioned SQL migrations of the ledger schema.

Migrations are the files `NNNN_name.sql` of a directory (`include/migrations/`), applied in
version order, each in its own transaction together with its row in `ledger.schema_migrations`
(version, name, checksum), so a failed migration leaves nothing behind. A session-level advisory
lock serialises concurrent runners: the second one waits, then finds nothing to do.
An applied file must never change: the runner refuses to go on if its checksum differs.

Pure functions on a psycopg connection; no Airflow import, so it also runs from plain scripts.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from hubspot_ledger.load.errors import MigrationError, first_line

_FILENAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")

# Arbitrary but fixed: every runner of every version of this code must use the same key.
# Advisory locks are per database, so ledgers on one server don't block each other.
ADVISORY_LOCK_KEY = 0x4C45_4447_4D49_47  # "LEDGMIG"

_BOOKKEEPING = """
CREATE SCHEMA IF NOT EXISTS ledger;
CREATE TABLE IF NOT EXISTS ledger.schema_migrations (
    version     text PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    name: str
    path: Path
    sql: str
    checksum: str


def _checksum(text: str) -> str:
    # Line endings are normalised so a checkout with CRLF does not look like an edited file.
    return hashlib.sha256(text.replace("\r\n", "\n").encode()).hexdigest()


def discover(directory: Path) -> list[Migration]:
    """The migrations in `directory`, in version order; stray or duplicate files are errors."""
    found: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILENAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_name.sql")
        version = match["version"]
        if version in found:
            raise MigrationError(f"two migrations share version {version}: "
                                 f"{found[version].path.name} and {path.name}")
        sql = path.read_text(encoding="utf-8")
        found[version] = Migration(version, match["name"], path, sql, _checksum(sql))
    return [found[v] for v in sorted(found)]


def applied(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """version -> checksum of what the database has applied ({} before the first migration)."""
    exists = conn.execute("SELECT to_regclass('ledger.schema_migrations')").fetchone()
    if exists is None or exists[0] is None:
        return {}
    rows = conn.execute("SELECT version, checksum FROM ledger.schema_migrations").fetchall()
    return {version: checksum for version, checksum in rows}


def pending(migrations: list[Migration], done: dict[str, str]) -> list[Migration]:
    """The migrations still to apply, after checking the applied ones are the files on disk."""
    by_version = {m.version: m for m in migrations}
    for version, checksum in sorted(done.items()):
        migration = by_version.get(version)
        if migration is None:
            raise MigrationError(
                f"the ledger has migration {version} applied but no file for it exists; "
                "this code is older than the database"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"{migration.path.name} was changed after it was applied "
                f"(checksum {checksum[:12]} in the ledger, {migration.checksum[:12]} on disk); "
                "never edit an applied migration, add a new one"
            )
    return [m for m in migrations if m.version not in done]


def migrate(conn: psycopg.Connection[Any], directory: Path) -> list[str]:
    """Apply every pending migration of `directory`; return the versions applied, in order.

    The connection must not be inside a transaction; it is left in its original autocommit mode.
    """
    migrations = discover(directory)
    was_autocommit = conn.autocommit
    # Autocommit outside the per-migration transactions: the advisory lock is held by the
    # session, across all of them, and released explicitly.
    conn.autocommit = True
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        try:
            conn.execute(_BOOKKEEPING)
            # Read under the lock: a runner that waited sees what the other one applied.
            todo = pending(migrations, applied(conn))
            for migration in todo:
                _apply(conn, migration)
            return [m.version for m in todo]
        finally:
            # A lost connection has already released the lock with its session.
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
    finally:
        if not conn.closed:
            conn.autocommit = was_autocommit


def _apply(conn: psycopg.Connection[Any], migration: Migration) -> None:
    try:
        with conn.transaction():
            # No parameters: psycopg sends the file as is, several statements at once.
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO ledger.schema_migrations (version, name, checksum) "
                "VALUES (%s, %s, %s)",
                [migration.version, migration.name, migration.checksum],
            )
    except psycopg.Error as exc:
        raise MigrationError(f"{migration.path.name} failed: {first_line(exc)}") from exc
