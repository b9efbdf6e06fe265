"""Set-based writes for the load layer: a page of records in a handful of statements.

`LedgerWriter.upsert_contracts`/`upsert_invoices` load a whole page of documents (with their lines)
through these: one query to read what is mapped, one INSERT (ids allocated up front, so rows and
their remote ids stay paired), one UPDATE and one DELETE per table, one upsert of the integration
records — instead of a dozen round trips per document. Rows travel by COPY into a scratch table
of the session, then one INSERT … SELECT or UPDATE … FROM (issue 12); a row or a link that
already holds these values is left alone, so a re-run rewrites nothing.

Nothing here decides business rules; the writer does (which documents change, which are refused)
and redoes a failing page record by record through the same statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class Table:
    """A ledger table as the bulk statements write it: its columns beyond id and
    organization_id. Their types are the ledger's own (the scratch table is made from it)."""

    name: str
    columns: tuple[str, ...]


CUSTOMERS = Table("customers", (
    "name", "customer_type", "email", "phone", "website", "address_line1", "address_line2",
    "city", "state", "postal_code", "country"))
ITEMS = Table("items", (
    "sku", "name", "description", "item_type", "income_account_id", "expense_account_id",
    "deferred_revenue_account_id"))
CONTRACTS = Table("contracts", (
    "company_id", "customer_id", "status", "name", "memo", "currency", "contract_date",
    "total_amount"))
OBLIGATIONS = Table("performance_obligations", (
    "contract_id", "item_id", "description", "quantity", "unit_price", "discount_percent",
    "discount_amount", "amount", "recognition_strategy", "service_start_date",
    "service_end_date"))
INVOICES = Table("invoices", (
    "company_id", "customer_id", "status", "number", "invoice_date", "due_date", "currency",
    "total_amount"))
INVOICE_LINES = Table("invoice_lines", (
    "invoice_id", "item_id", "description", "quantity", "unit_price", "amount"))


def allocate_ids(conn: psycopg.Connection[Any], table: Table, count: int) -> list[int]:
    if count == 0:
        return []
    rows = conn.execute(
        "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
        [f"ledger.{table.name}", count]).fetchall()
    return [int(r[0]) for r in rows]


def _load(conn: psycopg.Connection[Any], table: Table, ids: Sequence[int],
          rows: Sequence[Sequence[Any]]) -> sql.Composed:
    """COPY (id, *values) rows into this session's scratch table for `table`, emptied first;
    returns its name for the set-based statement that follows. COPY is the cheapest way into
    PostgreSQL for a page of rows; the scratch table lives as long as the connection, and
    keeps nothing past the transaction (ON COMMIT DELETE ROWS)."""
    scratch = sql.Identifier(f"load_{table.name}")
    columns = sql.SQL(", ").join(map(sql.Identifier, ("id", *table.columns)))
    # One round trip: no parameters, so psycopg may send both statements at once.
    conn.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {t} ON COMMIT DELETE ROWS AS "
                         "SELECT {cols} FROM ledger.{table} WITH NO DATA; DELETE FROM {t}"
                         ).format(t=scratch, cols=columns, table=sql.Identifier(table.name)))
    with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(scratch)) as copy:
        for local_id, row in zip(ids, rows, strict=True):
            copy.write_row((local_id, *row))
    return sql.SQL("pg_temp.{}").format(scratch)


def insert_rows(conn: psycopg.Connection[Any], table: Table, organization_id: int,
                rows: Sequence[Sequence[Any]]) -> list[int]:
    """Insert `rows` (values in `table.columns` order); returns their new ids, in order."""
    ids = allocate_ids(conn, table, len(rows))
    if not ids:
        return ids
    scratch = _load(conn, table, ids, rows)
    names = sql.SQL(", ").join(map(sql.Identifier, table.columns))
    conn.execute(sql.SQL(
        "INSERT INTO ledger.{table} (id, organization_id, {cols}) OVERRIDING SYSTEM VALUE "
        "SELECT id, %s, {cols} FROM {scratch}"
    ).format(table=sql.Identifier(table.name), cols=names, scratch=scratch), [organization_id])
    return ids


def update_rows(conn: psycopg.Connection[Any], table: Table, organization_id: int,
                ids: Sequence[int], rows: Sequence[Sequence[Any]]) -> None:
    """Set every column of `table` on the rows `ids` (each id's values in `rows`). A row
    whose values are already these is not touched: no new row version, no index upkeep, and
    its updated_at keeps saying when it last changed."""
    if not ids:
        return
    scratch = _load(conn, table, ids, rows)
    cols = [sql.Identifier(c) for c in table.columns]
    conn.execute(sql.SQL(
        "UPDATE ledger.{table} AS t SET {sets} FROM {scratch} AS v "
        "WHERE t.id = v.id AND t.organization_id = %s AND ({old}) IS DISTINCT FROM ({new})"
    ).format(table=sql.Identifier(table.name), scratch=scratch,
             sets=sql.SQL(", ").join(sql.SQL("{c} = v.{c}").format(c=c) for c in cols),
             old=sql.SQL(", ").join(sql.SQL("t.{}").format(c) for c in cols),
             new=sql.SQL(", ").join(sql.SQL("v.{}").format(c) for c in cols)),
        [organization_id])


def delete_rows(conn: psycopg.Connection[Any], table: Table, organization_id: int,
                ids: Sequence[int]) -> None:
    if ids:
        conn.execute(sql.SQL("DELETE FROM ledger.{} WHERE id = ANY(%s) AND organization_id = %s"
                             ).format(sql.Identifier(table.name)), [list(ids), organization_id])


@dataclass(frozen=True)
class Link:
    remote_type: str
    remote_id: str
    local_table: str
    local_id: int
    fingerprint: str | None


def upsert_links(conn: psycopg.Connection[Any], integration_id: int,
                 links: Sequence[Link]) -> None:
    if not links:
        return
    conn.execute(
        "INSERT INTO ledger.integration_records "
        "(integration_id, remote_type, remote_id, local_table, local_id, fingerprint) "
        "SELECT %s, * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::text[]) "
        "ON CONFLICT (integration_id, remote_type, remote_id) DO UPDATE SET "
        "local_table = EXCLUDED.local_table, local_id = EXCLUDED.local_id, "
        "fingerprint = EXCLUDED.fingerprint "
        # A link that already says this (a kept line) is not rewritten.
        "WHERE (integration_records.local_table, integration_records.local_id, "
        "integration_records.fingerprint) IS DISTINCT FROM "
        "(EXCLUDED.local_table, EXCLUDED.local_id, EXCLUDED.fingerprint)",
        [integration_id, [x.remote_type for x in links], [x.remote_id for x in links],
         [x.local_table for x in links], [x.local_id for x in links],
         [x.fingerprint for x in links]])


def delete_links(conn: psycopg.Connection[Any], integration_id: int, remote_type: str,
                 remote_ids: Sequence[str]) -> None:
    if remote_ids:
        conn.execute("DELETE FROM ledger.integration_records WHERE integration_id = %s "
                     "AND remote_type = %s AND remote_id = ANY(%s)",
                     [integration_id, remote_type, list(remote_ids)])


def children_of(conn: psycopg.Connection[Any], integration_id: int, table: Table,
                parent_column: str, parent_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """parent id → {remote key → child id} for the mapped lines of these parents."""
    found: dict[int, dict[str, int]] = {p: {} for p in parent_ids}
    if not parent_ids:
        return found
    rows = conn.execute(
        sql.SQL("SELECT c.{parent}, r.remote_id, c.id FROM ledger.{table} c "
                "JOIN ledger.integration_records r ON r.local_id = c.id "
                "AND r.local_table = %s AND r.integration_id = %s "
                "WHERE c.{parent} = ANY(%s)").format(
            parent=sql.Identifier(parent_column), table=sql.Identifier(table.name)),
        [table.name, integration_id, list(parent_ids)]).fetchall()
    for parent, remote, child in rows:
        found.setdefault(int(parent), {})[str(remote)] = int(child)
    return found
