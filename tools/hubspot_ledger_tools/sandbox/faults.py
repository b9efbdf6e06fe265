"""Deterministic fault injection: rules that make matching calls fail, stall, drop or expire.

A rule matches calls by method, path glob, endpoint glob, object type and portal (all optional)
and fires on the nth matching call, on every nth, on the first n, or (no trigger) on every one.
Actions: `status` (an HTTP error with HubSpot's body; 429 gets the rate-limit body), `delay`
(answer late), `reset` (close the connection without an answer), `expire_token` (the caller's
access token expires right now, so the call gets HubSpot's 401 for expired tokens), `raw` (answer
`status`, default 200, with the text `raw` as it is: a broken proxy, a half-written body, `{}`,
a JSON list where an object belongs), `drip` (the real answer, its headers at once and its body
`drip_bytes` at a time, `drip_interval` seconds apart: a server or proxy that never stalls long
enough for a read time-out, yet never finishes). `headers` adds response headers to `status`
and `raw` answers, e.g. `{"Retry-After": "0"}`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from hubspot_ledger_tools.sandbox.routing import Route
from hubspot_ledger_tools.sandbox.schema import resolve

ACTIONS = ("status", "delay", "reset", "expire_token", "raw", "drip")
TRIGGERS = ("nth", "every", "first")


@dataclass
class FaultRule:
    id: str
    action: str
    method: str | None = None
    # Glob on the request path, e.g. "/crm/v3/objects/deals*": a dated call matches it by the
    # path it was sent to or by that path's legacy spelling (routing.py), so a rule written for
    # either family holds at both.
    path: str | None = None
    endpoint: str | None = None  # glob on the endpoint name, e.g. "POST */search"
    object_type: str | None = None
    portal_id: int | None = None
    status: int = 503
    delay: float = 0.0  # seconds; with action "status" the error also comes late
    body: dict[str, Any] | None = None  # replaces the error body of action "status"
    policy: str | None = None  # 429 policyName (default by endpoint: search → SECONDLY)
    raw: str | None = None  # action "raw": the response body, sent as it is
    content_type: str = "application/json"  # action "raw"
    headers: dict[str, str] | None = None  # added to the answer of "status" and "raw"
    drip_interval: float = 1.0  # action "drip": seconds between two pieces of the body
    drip_bytes: int = 1  # action "drip": bytes per piece
    nth: int | None = None
    every: int | None = None
    first: int | None = None
    matched: int = 0  # matching calls seen so far
    fired: int = 0

    def matches(self, method: str, route: Route, portal_id: int | None) -> bool:
        return ((self.method is None or self.method.upper() == method)
                and (self.path is None or fnmatch.fnmatchcase(route.path, self.path)
                     or fnmatch.fnmatchcase(route.canonical, self.path))
                and (self.endpoint is None or fnmatch.fnmatchcase(route.endpoint,
                                                                  self.endpoint))
                and (self.object_type is None or self.object_type == route.object_type)
                and (self.portal_id is None or self.portal_id == portal_id))

    def count_and_check(self) -> bool:
        """Count one matching call; True if the rule fires on it."""
        self.matched += 1
        n = self.matched
        if self.nth is not None:
            fire = n == self.nth
        elif self.every is not None:
            fire = n % self.every == 0
        elif self.first is not None:
            fire = n <= self.first
        else:
            fire = True
        if fire:
            self.fired += 1
        return fire

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_rule(data: Mapping[str, Any], rule_id: str) -> FaultRule:
    """A rule from its JSON form; ValueError says what is wrong with it."""
    if not isinstance(data, Mapping):
        raise ValueError("a fault rule must be an object")
    known = set(FaultRule.__dataclass_fields__) - {"matched", "fired"}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown fault rule fields: {', '.join(sorted(unknown))}")
    implied = "raw" if data.get("raw") is not None else \
        "delay" if data.get("delay") and data.get("status") is None else "status"
    action = str(data.get("action") or implied)
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    triggers = [t for t in TRIGGERS if data.get(t) is not None]
    if len(triggers) > 1:
        raise ValueError(f"give at most one of {', '.join(TRIGGERS)}")
    for trigger in triggers:
        if int(data[trigger]) < 1:
            raise ValueError(f"{trigger} must be at least 1")
    object_type = data.get("object_type")
    if object_type is not None:
        otype = resolve(str(object_type))
        if otype is None:
            raise ValueError(f"unknown object_type {object_type!r}")
        object_type = otype.name
    drip_interval = float(1.0 if data.get("drip_interval") is None else data["drip_interval"])
    drip_bytes = int(1 if data.get("drip_bytes") is None else data["drip_bytes"])
    if action != "drip" and ("drip_interval" in data or "drip_bytes" in data):
        raise ValueError("drip_interval and drip_bytes belong to action drip")
    if not 0 < drip_interval <= 3600 or drip_bytes < 1:
        raise ValueError("drip_interval must be above 0 (at most 3600 s) and drip_bytes at "
                         "least 1")
    if action == "raw":
        if not isinstance(data.get("raw"), str):
            raise ValueError("action raw needs the response body as a string in `raw`")
        status = int(data.get("status") or 200)
        if not 200 <= status <= 599:
            raise ValueError("status of a raw answer must be 200-599")
    else:
        if data.get("raw") is not None:
            raise ValueError("`raw` belongs to action raw")
        status = int(data.get("status") or 503)
        if not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
    headers = data.get("headers")
    if headers is not None and (not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items())):
        raise ValueError("headers must be an object of strings")
    return FaultRule(
        id=str(data.get("id") or rule_id), action=action,
        method=str(data["method"]).upper() if data.get("method") else None,
        path=data.get("path"), endpoint=data.get("endpoint"), object_type=object_type,
        portal_id=int(data["portal_id"]) if data.get("portal_id") is not None else None,
        status=status, delay=float(data.get("delay") or 0.0),
        body=data.get("body"), policy=data.get("policy"), raw=data.get("raw"),
        content_type=str(data.get("content_type") or "application/json"),
        headers=dict(headers) if headers is not None else None,
        drip_interval=drip_interval, drip_bytes=drip_bytes,
        nth=_int(data.get("nth")), every=_int(data.get("every")), first=_int(data.get("first")))


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))
