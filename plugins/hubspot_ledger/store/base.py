"""What every repository is given: the hook's connection, and new ones where one must be apart."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

import psycopg

from hubspot_ledger.load.errors import LedgerSchemaError, first_line


class Connections(Protocol):
    """The part of `LedgerHook` a repository sees."""

    def session(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        """The hook's own connection (autocommit), held by this thread while the block runs."""
        ...

    def new_connection(self, *, connect_timeout: int | None = None
                       ) -> psycopg.Connection[Any]:
        """A connection apart from the hook's; the caller closes it."""
        ...


class Repository:
    def __init__(self, ledger: Connections) -> None:
        self._ledger = ledger

    def _session(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        return self._ledger.session()


@contextmanager
def schema_errors() -> Iterator[None]:
    """A missing schema becomes an error that says what to do."""
    try:
        yield
    except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName) as exc:
        raise LedgerSchemaError(
            f"the ledger schema is missing or out of date ({first_line(exc)}); "
            "run `hubspot-ledger migrate`"
        ) from exc


def scalar(cursor: psycopg.Cursor[Any]) -> Any:
    row = cursor.fetchone()
    return row[0] if row else None
