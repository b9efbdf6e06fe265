"""HubSpot's webhooks, as the sandbox sends them (shared/reference/hubspot-api.md §6).

When a portal's data changes through the admin API (a record created, changed, archived,
restored or deleted; its associations changed) and a target URL is configured (`webhook_url`,
`PATCH /_sandbox/config` or `--webhook-url`), the sandbox posts the events its app is subscribed
to (`webhook_subscriptions`) to that URL, as HubSpot does:

- a JSON array of events, batched: an event waits up to `webhook_batch_delay` seconds for
  others (of any portal, each event names its own), at most `webhook_batch_size` (HubSpot:
  100) per call;
- each event: eventId, subscriptionId, portalId, appId, occurredAt (ms), subscriptionType
  (`deal.propertyChange`, …; `object.*` with objectTypeId for types without their own, such as
  invoices), attemptNumber, objectId, changeSource, and propertyName/propertyValue for a
  property change, fromObjectId/toObjectId/associationType for an association change;
- signed with the app's client secret: `X-HubSpot-Signature-v3` = base64(HMAC-SHA256(secret,
  method + uri + body + timestamp)) and `X-HubSpot-Request-Timestamp` (ms); the older
  `X-HubSpot-Signature` (v1: sha256 of secret + body) with `X-HubSpot-Signature-Version`;
- resent on a connection failure, an answer slower than 5 s or any 4xx/5xx, up to
  `webhook_retries` times (HubSpot: 10, over hours; the sandbox waits a second), attemptNumber
  counting up, signed anew.

Every call and its answer is kept in a delivery log (`GET /_sandbox/webhooks`). The signer is
the sandbox's own (HubSpot's rule, written here again): the sandbox never imports the product.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from hubspot_ledger_tools.sandbox.schema import ObjectType
from hubspot_ledger_tools.sandbox.timefmt import now_ms

log = logging.getLogger(__name__)

# The object types with subscriptions of their own; any other type's events are `object.*`.
CLASSIC = frozenset({"contact", "company", "deal", "ticket", "product", "line_item"})
ACTIONS = ("creation", "deletion", "restore", "propertyChange", "associationChange", "merge")
DEFAULT_SUBSCRIPTIONS = tuple(
    [f"{kind}.{action}" for kind in ("deal", "company", "line_item", "product")
     for action in ("creation", "deletion", "restore", "propertyChange")]
    + ["deal.associationChange", "object.creation", "object.deletion",
       "object.propertyChange"])
HUBSPOT_TIMEOUT = 5.0  # HubSpot counts a slower answer as a failure and sends again
DELIVERY_LOG_SIZE = 1_000


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    message = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def signed_headers(secret: str, uri: str, body: bytes, timestamp_ms: int) -> dict[str, str]:
    """The headers HubSpot sends with a webhook call (POST) to `uri`."""
    return {"Content-Type": "application/json",
            "X-HubSpot-Signature-v3": sign_v3(secret, "POST", uri, body, str(timestamp_ms)),
            "X-HubSpot-Request-Timestamp": str(timestamp_ms),
            "X-HubSpot-Signature": hashlib.sha256(secret.encode() + body).hexdigest(),
            "X-HubSpot-Signature-Version": "v1"}


def check_subscription(text: str) -> str:
    """`kind.action` or `kind.propertyChange:property` (only that property's changes)."""
    kind, dot, rest = text.strip().partition(".")
    action, _, prop = rest.partition(":")
    if not dot or not kind or action not in ACTIONS or (prop and action != "propertyChange"):
        raise ValueError(f"a webhook subscription is kind.action (actions: {', '.join(ACTIONS)})"
                         f" or kind.propertyChange:property, not {text!r}")
    return text.strip()


@dataclass(frozen=True)
class Change:
    """What one admin call did to one record."""

    otype: ObjectType
    record_id: int
    action: str  # creation, deletion, restore, propertyChange, associationChange
    properties: Mapping[str, Any] | None = None  # propertyChange: name → new value
    associated: tuple[tuple[str, int], ...] = ()  # associationChange: (type, id) linked


def _kind(otype: ObjectType) -> str:
    return otype.singular if otype.singular in CLASSIC else "object"


def _subscription(subscriptions: list[str], kind: str, action: str, prop: str | None
                  ) -> int | None:
    """The id of the subscription an event falls under (its index, as HubSpot numbers them),
    or None: the app is not subscribed."""
    for index, text in enumerate(subscriptions):
        name, _, only = text.partition(":")
        if name == f"{kind}.{action}" and (not only or only == prop):
            return 100_000 + index
    return None


class WebhookSender:
    """Turns changes into events and posts them (module docstring). `settings()` returns the
    current (url, secret, app id, subscriptions, batch size, batch delay, retries)."""

    def __init__(self, settings: Callable[[], tuple[str, str, int, list[str], int, float, int]]
                 ) -> None:
        self.settings = settings
        self._queue: queue.Queue[tuple[int, dict[str, Any]] | None] = queue.Queue()
        self._event_ids = itertools.count(1)
        self._delivery_ids = itertools.count(1)
        self._lock = threading.Lock()
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=DELIVERY_LOG_SIZE)
        self._thread: threading.Thread | None = None
        self._generation = 0  # bumped by clear(): events queued before it are dropped
        self.http = requests.Session()

    # -- changes → events ---------------------------------------------------------------------

    def record(self, portal_id: int, changes: Iterable[Change]) -> int:
        """Queue the events of `changes` the app is subscribed to; returns how many."""
        url, _, app_id, subscriptions, *_ = self.settings()
        if not url:
            return 0
        queued = 0
        for event in self._events(portal_id, app_id, subscriptions, changes):
            self._start()
            self._queue.put((self._generation, event))
            queued += 1
        return queued

    def _events(self, portal_id: int, app_id: int, subscriptions: list[str],
                changes: Iterable[Change]) -> Iterable[dict[str, Any]]:
        occurred = now_ms()
        for change in changes:
            kind = _kind(change.otype)
            base: dict[str, Any] = {"portalId": portal_id, "appId": app_id,
                                    "occurredAt": occurred, "attemptNumber": 0,
                                    "changeSource": "CRM"}
            if kind == "object":
                base["objectTypeId"] = change.otype.type_id
            if change.action == "propertyChange":
                for name, value in sorted((change.properties or {}).items()):
                    sid = _subscription(subscriptions, kind, "propertyChange", name)
                    if sid is not None:
                        yield {**base, "eventId": next(self._event_ids), "subscriptionId": sid,
                               "subscriptionType": f"{kind}.propertyChange",
                               "objectId": change.record_id, "propertyName": name,
                               "propertyValue": "" if value is None else str(value)}
                continue
            sid = _subscription(subscriptions, kind, change.action, None)
            if sid is None:
                continue
            if change.action == "associationChange":
                for to_type, to_id in change.associated:
                    yield {**base, "eventId": next(self._event_ids), "subscriptionId": sid,
                           "subscriptionType": f"{kind}.associationChange",
                           "associationType": f"{change.otype.label}_TO_{to_type.upper()}",
                           "fromObjectId": change.record_id, "toObjectId": to_id,
                           "associationRemoved": False, "isPrimaryAssociation": False}
                continue
            flag = {"creation": "CREATED", "deletion": "DELETED", "restore": "RESTORED"}
            yield {**base, "eventId": next(self._event_ids), "subscriptionId": sid,
                   "subscriptionType": f"{kind}.{change.action}", "objectId": change.record_id,
                   "changeFlag": flag.get(change.action, "UPDATED")}

    # -- sending ------------------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sandbox-webhooks",
                                                daemon=True)
                self._thread.start()

    def clear(self) -> None:
        """Drop what is queued and the delivery log (a sandbox reset)."""
        with self._lock:
            self._generation += 1
            self.deliveries.clear()

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)
        self.http.close()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            generation, event = first
            url, secret, _, _, size, delay, retries = self.settings()
            batch = [event]
            deadline = time.monotonic() + max(0.0, delay)
            stop = False
            while len(batch) < max(1, size):
                try:
                    more = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                if more[0] == generation:
                    batch.append(more[1])
            if generation == self._generation and url:
                self._deliver(url, secret, batch, retries, generation)
            if stop:
                return

    def _deliver(self, url: str, secret: str, events: list[dict[str, Any]], retries: int,
                 generation: int) -> None:
        """Post the batch (and resend it on failure) until a reset (`clear`) intervenes."""
        for attempt in range(retries + 1):
            sent = [{**e, "attemptNumber": attempt} for e in events]
            body = json.dumps(sent, separators=(",", ":")).encode()
            entry: dict[str, Any] = {"id": next(self._delivery_ids), "url": url,
                                     "time": now_ms(), "attempt": attempt, "events": sent,
                                     "status": None, "error": None}
            try:
                answer = self.http.post(url, data=body, timeout=HUBSPOT_TIMEOUT,
                                        headers=signed_headers(secret, url, body, now_ms()))
                entry["status"] = answer.status_code
                entry["answer"] = answer.text[:500]
                ok = 200 <= answer.status_code < 300
            except requests.RequestException as exc:
                entry["error"] = type(exc).__name__
                ok = False
            with self._lock:
                if generation != self._generation:
                    return  # reset while it was in flight: forgotten, as the reset says
                self.deliveries.append(entry)
            if ok:
                return
            if attempt < retries:
                time.sleep(1.0)
