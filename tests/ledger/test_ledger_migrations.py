"""The migration runner: ordered, recorded with checksums, idempotent, serialised, tamper-proof."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hubspot_ledger.config import MIGRATIONS_DIR
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load import migrations
from hubspot_ledger.load.errors import MigrationError

from .helpers import connect

pytestmark = pytest.mark.integration


def schema_snapshot(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """Columns, constraints and indexes of the ledger schema, comparable across runs."""
    columns = conn.execute(
        "SELECT table_name, column_name, data_type, numeric_precision, numeric_scale, "
        "is_nullable, column_default FROM information_schema.columns "
        "WHERE table_schema = 'ledger' ORDER BY 1, 2"
    ).fetchall()
    constraints = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE connamespace = 'ledger'::regnamespace ORDER BY 1, 2"
    ).fetchall()
    indexes = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'ledger' ORDER BY 1"
    ).fetchall()
    return [*columns, *constraints, *indexes]


def copy_migrations(target: Path) -> Path:
    target.mkdir()
    for path in MIGRATIONS_DIR.glob("*.sql"):
        shutil.copy(path, target / path.name)
    return target


def test_discover_lists_the_shipped_migrations_in_order() -> None:
    found = migrations.discover(MIGRATIONS_DIR)
    assert [m.version for m in found] == sorted(m.version for m in found)
    assert found[0].version == "0001"
    assert all(len(m.checksum) == 64 for m in found)


def test_second_migrate_applies_nothing_and_changes_nothing(ledger_db: str) -> None:
    with psycopg.connect(ledger_db, autocommit=True) as conn:
        before = schema_snapshot(conn)
        recorded = conn.execute(
            "SELECT version, checksum, applied_at FROM ledger.schema_migrations ORDER BY 1"
        ).fetchall()
        assert [r[0] for r in recorded] == [m.version for m in migrations.discover(MIGRATIONS_DIR)]

        assert LedgerHook().migrate() == []

        assert schema_snapshot(conn) == before
        assert conn.execute(
            "SELECT version, checksum, applied_at FROM ledger.schema_migrations ORDER BY 1"
        ).fetchall() == recorded


def test_migrate_on_an_empty_database_applies_every_version(scratch_db: str) -> None:
    applied = LedgerHook(database=scratch_db).migrate()
    assert applied == [m.version for m in migrations.discover(MIGRATIONS_DIR)]
    assert LedgerHook(database=scratch_db).migrate() == []


def test_concurrent_migrates_both_succeed_and_apply_once(scratch_db: str, tmp_path: Path) -> None:
    directory = copy_migrations(tmp_path / "migrations")
    # A slow extra migration widens the window in which the two runners overlap.
    (directory / "9999_slow.sql").write_text("SELECT pg_sleep(0.5);\n")
    barrier = threading.Barrier(2)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with connect(scratch_db) as conn:
                barrier.wait()
                results.append(migrations.migrate(conn, directory))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    everything = [m.version for m in migrations.discover(directory)]
    assert sorted(results, key=len) == [[], everything]
    with connect(scratch_db) as conn:
        rows = conn.execute("SELECT version FROM ledger.schema_migrations ORDER BY 1").fetchall()
    assert [r[0] for r in rows] == everything


def test_a_changed_applied_migration_is_refused(scratch_db: str, tmp_path: Path) -> None:
    directory = copy_migrations(tmp_path / "migrations")
    with connect(scratch_db) as conn:
        migrations.migrate(conn, directory)
        first = directory / "0001_ledger_schema.sql"
        first.write_text(first.read_text() + "\n-- an innocent-looking edit\n")
        (directory / "0900_new.sql").write_text("CREATE TABLE ledger.never_created (id int);\n")

        with pytest.raises(MigrationError, match="0001_ledger_schema.sql was changed"):
            migrations.migrate(conn, directory)
        # Refused before anything new was applied.
        exists = conn.execute("SELECT to_regclass('ledger.never_created')").fetchone()
        assert exists == (None,)


def test_line_endings_alone_are_not_a_change(scratch_db: str, tmp_path: Path) -> None:
    directory = copy_migrations(tmp_path / "migrations")
    with connect(scratch_db) as conn:
        migrations.migrate(conn, directory)
        first = directory / "0001_ledger_schema.sql"
        first.write_bytes(first.read_bytes().replace(b"\n", b"\r\n"))
        assert migrations.migrate(conn, directory) == []


def test_an_applied_version_without_its_file_is_refused(scratch_db: str, tmp_path: Path) -> None:
    directory = copy_migrations(tmp_path / "migrations")
    (directory / "9002_extra.sql").write_text("CREATE TABLE ledger.extra (id int);\n")
    with connect(scratch_db) as conn:
        migrations.migrate(conn, directory)
        (directory / "9002_extra.sql").unlink()
        with pytest.raises(MigrationError, match="9002 applied but no file"):
            migrations.migrate(conn, directory)


def test_a_failing_migration_leaves_nothing_behind(scratch_db: str, tmp_path: Path) -> None:
    directory = copy_migrations(tmp_path / "migrations")
    (directory / "9002_broken.sql").write_text(
        "CREATE TABLE ledger.half_done (id int);\nSELECT no_such_function();\n"
    )
    shipped = [(m.version,) for m in migrations.discover(MIGRATIONS_DIR)]
    with connect(scratch_db) as conn:
        with pytest.raises(MigrationError, match=r"9002_broken.sql failed: .*no_such_function"):
            migrations.migrate(conn, directory)
        rows = conn.execute("SELECT version FROM ledger.schema_migrations ORDER BY 1").fetchall()
        assert rows == shipped  # each committed on its own; 9002 rolled back entirely
        assert conn.execute("SELECT to_regclass('ledger.half_done')").fetchone() == (None,)
        # The lock was released: a fixed file applies.
        (directory / "9002_broken.sql").write_text("CREATE TABLE ledger.half_done (id int);\n")
        assert migrations.migrate(conn, directory) == ["9002"]


@pytest.mark.parametrize("name", ["1_short.sql", "0003-dash.sql", "0003_Upper.sql"])
def test_badly_named_files_are_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match="NNNN_lower_name.sql"):
        migrations.discover(tmp_path)


def test_duplicate_versions_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;\n")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match="share version 0001"):
        migrations.discover(tmp_path)
