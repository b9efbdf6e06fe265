"""An integration's ledger as HubSpot ids and natural keys, to compare two integrations of the
same portal: one that lived through changes and incremental runs, one made fresh with the same
settings and synced once in full (issue 10: "incremental equals full").

What is compared, and why (DESIGN "lost deals and invoices", "companies"):
- contracts and invoices that are not void, with their lines, exactly;
- the items and customers those documents point at, exactly;
- every other item and customer: the fresh ledger's must all be in the lived one. Items and
  customers are never deleted (other ledger rows may use them), so the lived ledger may keep
  those of deals that were since lost;
- the open problems (records that still fail), exactly;
- a void document of the lived ledger has no live twin in the fresh one.
"""

from __future__ import annotations

from typing import Any

import psycopg

_LINK = ("JOIN ledger.integration_records r ON r.local_id = x.id AND r.local_table = '{t}' "
         "AND r.integration_id = %(i)s")
_ACCOUNT = "(SELECT code FROM ledger.accounts a WHERE a.id = x.{c})"
_ITEM = ("SELECT r.remote_id, x.sku, x.name, x.description, x.item_type, "
         f"{_ACCOUNT.format(c='income_account_id')}, {_ACCOUNT.format(c='expense_account_id')}, "
         f"{_ACCOUNT.format(c='deferred_revenue_account_id')} FROM ledger.items x "
         + _LINK.format(t="items"))
_CUSTOMER = ("SELECT r.remote_id, x.name, x.customer_type, x.email, x.phone, x.website, "
             "x.address_line1, x.address_line2, x.city, x.state, x.postal_code, x.country "
             "FROM ledger.customers x " + _LINK.format(t="customers"))
_CUSTOMER_KEY = ("coalesce((SELECT remote_id FROM ledger.integration_records c WHERE "
                 "c.integration_id = %(i)s AND c.local_table = 'customers' "
                 "AND c.local_id = x.customer_id), 'Unknown')")
_DOC_LINKS = ("SELECT rd.remote_id FROM ledger.integration_records rd "
              "WHERE rd.integration_id = %(i)s AND rd.local_table = '{t}' "
              "AND rd.local_id = x.{parent}")
QUERIES = {
    "contracts": ("SELECT r.remote_id, x.status, x.name, x.memo, x.currency, x.contract_date, "
                  "x.total_amount, (SELECT name FROM ledger.companies c WHERE "
                  f"c.id = x.company_id), {_CUSTOMER_KEY} FROM ledger.contracts x "
                  + _LINK.format(t="contracts") + " WHERE x.status <> 'void'"),
    "obligations": (f"SELECT ({_DOC_LINKS.format(t='contracts', parent='contract_id')}), "
                    "r.remote_id, (SELECT remote_id FROM ledger.integration_records p WHERE "
                    "p.integration_id = %(i)s AND p.local_table = 'items' AND "
                    "p.local_id = x.item_id LIMIT 1), x.description, x.quantity, x.unit_price, "
                    "x.discount_percent, x.discount_amount, x.amount, x.recognition_strategy "
                    "FROM ledger.performance_obligations x "
                    + _LINK.format(t="performance_obligations")
                    + " JOIN ledger.contracts k ON k.id = x.contract_id "
                    "WHERE k.status <> 'void'"),
    "invoices": ("SELECT r.remote_id, x.status, x.number, x.invoice_date, x.due_date, "
                 f"x.currency, x.total_amount, {_CUSTOMER_KEY} FROM ledger.invoices x "
                 + _LINK.format(t="invoices") + " WHERE x.status <> 'void'"),
    "invoice_lines": (f"SELECT ({_DOC_LINKS.format(t='invoices', parent='invoice_id')}), "
                      "r.remote_id, x.description, x.quantity, x.unit_price, x.amount "
                      "FROM ledger.invoice_lines x " + _LINK.format(t="invoice_lines")
                      + " JOIN ledger.invoices k ON k.id = x.invoice_id "
                      "WHERE k.status <> 'void'"),
    "items": _ITEM,
    "used_items": _ITEM + " WHERE x.id IN (SELECT item_id FROM ledger.performance_obligations "
                          "o JOIN ledger.contracts k ON k.id = o.contract_id WHERE "
                          "k.status <> 'void' UNION SELECT item_id FROM ledger.invoice_lines l "
                          "JOIN ledger.invoices v ON v.id = l.invoice_id "
                          "WHERE v.status <> 'void')",
    "customers": _CUSTOMER,
    "used_customers": _CUSTOMER + " WHERE x.id IN (SELECT customer_id FROM ledger.contracts "
                                  "WHERE status <> 'void')",
    "open_problems": ("SELECT remote_type, remote_id, message FROM ledger.integration_errors "
                      "WHERE integration_id = %(i)s AND resolved_at IS NULL"),
    "void": ("SELECT r.remote_type, r.remote_id FROM ledger.integration_records r "
             "LEFT JOIN ledger.contracts c ON r.local_table = 'contracts' AND c.id = r.local_id "
             "LEFT JOIN ledger.invoices v ON r.local_table = 'invoices' AND v.id = r.local_id "
             "WHERE r.integration_id = %(i)s AND 'void' IN (c.status, v.status)"),
}
EXACT = ("contracts", "obligations", "invoices", "invoice_lines", "used_items",
         "used_customers", "open_problems")

View = dict[str, set[tuple[str, ...]]]


def view(conn: psycopg.Connection[Any], integration_id: int) -> View:
    return {name: {tuple(str(v) for v in row)
                   for row in conn.execute(query, {"i": integration_id}).fetchall()}
            for name, query in QUERIES.items()}


def differences(lived: View, fresh: View) -> list[str]:
    """What keeps the lived ledger from being the fresh one (empty: they agree)."""
    found = [f"{name}: only lived {sorted(lived[name] - fresh[name])}, "
             f"only fresh {sorted(fresh[name] - lived[name])}"
             for name in EXACT if lived[name] != fresh[name]]
    for name in ("items", "customers"):
        if not fresh[name] <= lived[name]:
            found.append(f"{name} of the fresh ledger missing: "
                         f"{sorted(fresh[name] - lived[name])}")
    live_ids = {("deal", c[0]) for c in fresh["contracts"]} | {
        ("invoice", v[0]) for v in fresh["invoices"]}
    if lived["void"] & live_ids:
        found.append(f"void in the lived ledger but live in the fresh one: "
                     f"{sorted(lived['void'] & live_ids)}")
    return found
