"""HubSpot's CRM reads (hubspot-api.md §2): list and search paging, batch reads by id, v4 batch
associations, at the deployment's API version (`paths`, hubspot_paths.py). `HubSpotCrmReads`
is the part of `HubSpotHook` that pages; each generator yields pages (lists of raw records) in
HubSpot's order.

Several requests are in flight at once (issue 12): at HubSpot's 100–300 ms per answer one at a
time would use a third of the portal's budget. The batches of one call and the pages of one
search go out together, at most `max_in_flight` general and `SEARCH_IN_FLIGHT` search requests
per hook, each one still taking its slot of the portal's shared budget first (ratelimit.py).
Results come back in request order, so callers see exactly what sequential paging gives.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from hubspot_ledger.hooks.hubspot_paths import ApiPaths

log = logging.getLogger("hubspot_ledger.hooks.hubspot")


@dataclass(frozen=True)
class Association:
    """One associated record and HubSpot's association type ids (e.g. 5 = primary company)."""

    to_id: str
    type_ids: frozenset[int]


# HubSpot's documented maxima: the fewest requests for the most records.
LIST_PAGE = 100
SEARCH_PAGE = 200
SEARCH_CAP = 10_000
BATCH_READ = 100
ASSOCIATION_BATCH = 1_000
# Requests of one hook in flight at once: general (HubSpot's SDK allows 6) and search (its SDK
# allows 3; the search budget is 4/s, so two in flight at ~250 ms each already keep it busy).
MAX_IN_FLIGHT = 6
SEARCH_IN_FLIGHT = 2

T = TypeVar("T")
R = TypeVar("R")
Raw = dict[str, Any]


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class HubSpotCrmReads:
    """The CRM reads of `HubSpotHook` (which provides `request`)."""

    search_cap: int = SEARCH_CAP  # HubSpot's; a test sandbox may use a smaller one
    max_in_flight: int = MAX_IN_FLIGHT

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json_body: dict[str, Any] | None = None) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def paths(self) -> ApiPaths:
        raise NotImplementedError

    # -- requests in flight ------------------------------------------------------------------

    _pools: dict[str, ThreadPoolExecutor]
    _pools_lock = threading.Lock()

    def _pool(self, kind: str) -> ThreadPoolExecutor:
        with self._pools_lock:
            if not hasattr(self, "_pools"):
                self._pools = {}
            pool = self._pools.get(kind)
            if pool is None:
                pool = ThreadPoolExecutor(max_workers=self._depth(kind),
                                          thread_name_prefix=f"hubspot-{kind}")
                self._pools[kind] = pool
            return pool

    def _depth(self, kind: str) -> int:
        return max(self.max_in_flight if kind == "general" else SEARCH_IN_FLIGHT, 1)

    def close_pools(self) -> None:
        with self._pools_lock:
            pools, self._pools = getattr(self, "_pools", {}), {}
        for pool in pools.values():
            pool.shutdown(wait=True, cancel_futures=True)

    def _in_flight(self, kind: str, calls: Iterable[Callable[[], R]]) -> Iterator[R]:
        """The results of `calls`, in order, with up to the pool's size of them in flight."""
        pool = self._pool(kind)
        depth = self._depth(kind)
        pending: deque[Future[R]] = deque()
        try:
            for call in calls:
                pending.append(pool.submit(call))
                if len(pending) >= depth:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:  # a caller that stopped early: nothing more goes out
                future.cancel()

    # -- list --------------------------------------------------------------------------------

    def list_pages(self, object_type: str, properties: Sequence[str],
                   archived: bool = False) -> Iterator[list[Raw]]:
        """Every record of a type, by cursor paging (`GET …/objects/{type}`): one page
        at a time, since each cursor comes with the page before it."""
        params: dict[str, Any] = {"limit": LIST_PAGE, "properties": ",".join(properties),
                                  "archived": str(archived).lower()}
        while True:
            body = self.request("GET", self.paths.objects(object_type), params=params)
            yield list(body.get("results", []))
            after = (body.get("paging") or {}).get("next", {}).get("after")
            if not after:
                return
            params = {**params, "after": after}

    # -- search ------------------------------------------------------------------------------

    def search_pages(self, object_type: str, filters: Sequence[dict[str, Any]],
                     properties: Sequence[str], *,
                     any_of: Sequence[Sequence[dict[str, Any]]] = ()
                     ) -> Iterator[list[Raw]]:
        """Every record matching `filters` (ANDed), past the search API's 10,000-result cap.

        `any_of` ORs alternative filter groups, each ANDed with `filters`.
        Sorted by `hs_object_id`; before paging would reach the cap, the query restarts with
        `hs_object_id > <last id seen>`, so no window is ever larger than the cap and nothing
        is skipped, whatever the other filters are. The first page's `total` tells how many
        pages the window has: the others go out together.
        """
        last_id: str | None = None
        while True:
            window = list(filters)
            if last_id is not None:
                window.append({"propertyName": "hs_object_id", "operator": "GT",
                               "value": last_id})
            groups = [{"filters": [*window, *alt]} for alt in any_of] or [{"filters": window}]
            page = partial(self._search_page, object_type, groups, list(properties))
            restart = False
            for body in self._window_pages(page):
                results = list(body.get("results", []))
                if results:
                    yield results
                    last_id = str(results[-1]["id"])
                next_after = (body.get("paging") or {}).get("next", {}).get("after")
                restart = bool(next_after) and int(next_after) + SEARCH_PAGE > self.search_cap
            if not restart:
                return

    def _search_page(self, object_type: str, groups: list[dict[str, Any]],
                     properties: list[str], after: int) -> dict[str, Any]:
        return self.request("POST", self.paths.search(object_type), json_body={
            "filterGroups": groups,
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "properties": properties, "limit": SEARCH_PAGE, "after": str(after)})

    def _window_pages(self, page: Callable[[int], dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """The answers of one search window, page by page, up to the cap: the first alone,
        the rest (as many as its `total` says) in flight together; a window that grew while
        being read is followed further one page at a time."""
        first = page(0)
        yield first
        after = _next_after(first)
        total = first.get("total")
        if after is not None and isinstance(total, int) and not isinstance(total, bool):
            offsets = range(after, min(total, self.search_cap - SEARCH_PAGE + 1), SEARCH_PAGE)
            last: dict[str, Any] | None = None
            for body in self._in_flight("search", (partial(page, o) for o in offsets)):
                last = body
                yield body
            if last is not None:
                after = _next_after(last)
        while after is not None and after + SEARCH_PAGE <= self.search_cap:
            body = page(after)
            yield body
            after = _next_after(body)

    # -- by id -------------------------------------------------------------------------------

    def batch_read(self, object_type: str, ids: Sequence[str], properties: Sequence[str],
                   *, archived: bool = False) -> Iterator[list[Raw]]:
        """Records by id, 100 per request. Ids HubSpot does not know are logged and left out.
        `archived=True` reads records in HubSpot's recycle bin instead of live ones."""
        params = {"archived": "true"} if archived else None
        calls = (partial(self.request, "POST", self.paths.batch_read(object_type),
                         params=params, json_body={"inputs": [{"id": i} for i in chunk],
                                                   "properties": list(properties)})
                 for chunk in _chunks(ids, BATCH_READ))
        for body in self._in_flight("general", calls):
            for error in body.get("errors") or []:
                log.warning("HubSpot could not read %s %s: %s", object_type,
                            ",".join(map(str, (error.get("context") or {}).get("ids", []))),
                            error.get("message"))
            yield list(body.get("results", []))

    def batch_associations(self, from_type: str, to_type: str, ids: Sequence[str]
                           ) -> dict[str, list[Association]]:
        """`from id → [associations]` (v4 batch read, 1,000 ids per request, every page)."""
        found: dict[str, list[Association]] = {str(i): [] for i in ids}
        pending = [{"id": str(i)} for i in ids]
        path = self.paths.associations_batch_read(from_type, to_type)
        while pending:
            next_round: list[dict[str, str]] = []
            calls = (partial(self.request, "POST", path, json_body={"inputs": list(chunk)})
                     for chunk in _chunks(pending, ASSOCIATION_BATCH))
            for body in self._in_flight("general", calls):
                for result in body.get("results", []):
                    source = str(result["from"]["id"])
                    found.setdefault(source, []).extend(
                        Association(to_id=str(to["toObjectId"]),
                                    type_ids=frozenset(int(t["typeId"]) for t in
                                                       to.get("associationTypes", [])))
                        for to in result.get("to", []))
                    after = (result.get("paging") or {}).get("next", {}).get("after")
                    if after:
                        next_round.append({"id": source, "after": str(after)})
            pending = next_round
        return found


def _next_after(body: dict[str, Any]) -> int | None:
    after = (body.get("paging") or {}).get("next", {}).get("after")
    return int(after) if after else None
