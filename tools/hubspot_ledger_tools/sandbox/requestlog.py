"""What the sandbox was asked, for tests to read: one entry per HubSpot call (not admin calls).

Secrets never reach the log: token-bearing path segments and secret query parameters are masked,
and form bodies (the token endpoint's) are not kept at all.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from hubspot_ledger_tools.sandbox.timefmt import iso, now_ms

SECRET_PARAMS = frozenset({"client_secret", "code", "refresh_token", "access_token", "token",
                           "hapikey", "code_verifier"})
MASK = "***"


def masked_query(params: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    query: dict[str, str | list[str]] = {}
    for key, value in params:
        shown = MASK if key in SECRET_PARAMS else value
        if key in query:
            previous = query[key]
            query[key] = [*previous, shown] if isinstance(previous, list) else [previous, shown]
        else:
            query[key] = shown
    return query


class RequestLog:
    def __init__(self, size: int) -> None:
        self.entries: deque[dict[str, Any]] = deque(maxlen=size)
        self.seq = 0

    def start(self, **fields: Any) -> dict[str, Any]:
        self.seq += 1
        entry: dict[str, Any] = {"seq": self.seq, "time": iso(now_ms()), **fields,
                                 "status": None, "duration_ms": None, "fault": None}
        self.entries.append(entry)
        return entry

    def clear(self) -> None:
        self.entries.clear()  # seq keeps counting so that `since` cursors stay valid

    def resize(self, size: int) -> None:
        if size != self.entries.maxlen:
            self.entries = deque(self.entries, maxlen=size)

    def select(self, since: int = 0, endpoint: str | None = None, portal_id: int | None = None,
               object_type: str | None = None, limit: int | None = None
               ) -> list[dict[str, Any]]:
        found = [e for e in self.entries if e["seq"] > since
                 and (endpoint is None or e["endpoint"] == endpoint)
                 and (portal_id is None or e["portal_id"] == portal_id)
                 and (object_type is None or e["object_type"] == object_type)]
        return found[:limit] if limit else found
