"""Errors of the ledger layer, each with a one-line message an operator can act on.

The CLI prints an exception as one line, and psycopg's own messages span several (hints,
"LINE 1: …" context), so the ledger layer translates the ones an operator meets.
"""

from __future__ import annotations


class LedgerError(RuntimeError):
    """Base of the ledger layer's errors."""


class LedgerUnavailableError(LedgerError, ConnectionError):
    """The ledger database cannot be reached (server down, wrong host, missing database, …)."""


class LedgerSchemaError(LedgerError):
    """The ledger schema is missing or older than the code: `hubspot-ledger migrate` fixes it."""


class MigrationError(LedgerError):
    """The migrations on disk and in the database disagree, a file is malformed or one failed."""


def first_line(exc: BaseException) -> str:
    """An exception's message reduced to its first non-empty line (its class name if none)."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


class NotFoundError(LedgerError, LookupError):
    """A record named by the caller does not exist (or is not in the caller's organization)."""


class LedgerBusyError(LedgerError):
    """Another run holds the integration's write lock for too long."""
