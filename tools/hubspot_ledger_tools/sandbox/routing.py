"""What a request is, before any handler runs: admin or HubSpot call, its normalized endpoint
name, object types and needed scopes (for the request log, fault rules, auth and rate limits)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from hubspot_ledger_tools.sandbox.schema import resolve

# Date-versioned paths answer like the versioned ones they replace (hubspot-api.md §0).
ALIASES = (("/crm/objects/2026-03/", "/crm/v3/objects/"),
           ("/crm/associations/2026-03/", "/crm/v4/associations/"))


@dataclass(frozen=True)
class Route:
    kind: str  # admin | oauth | api | other
    endpoint: str  # e.g. "POST /crm/v3/objects/deals/search"
    path: str  # the path as logged (token segments masked)
    object_type: str | None = None
    to_object_type: str | None = None
    search: bool = False
    scopes: tuple[str, ...] = ()


def canonical_path(path: str) -> str:
    for alias, target in ALIASES:
        if path.startswith(alias):
            return target + path[len(alias):]
    return path


def _type(segment: str) -> tuple[str, str | None, tuple[str, ...]]:
    """(name for the endpoint, canonical type or None, scopes) of a path's object type."""
    otype = resolve(segment)
    if otype is None:
        return segment, None, ()
    return otype.name, otype.name, (otype.scope,)


def _objects(method: str, m: re.Match[str], path: str) -> Route:
    name, canonical, scopes = _type(m["type"])
    rest = m["rest"] or ""
    if rest == "/search":
        return Route("api", f"{method} /crm/v3/objects/{name}/search", path, canonical,
                     search=True, scopes=scopes)
    if rest.startswith("/batch/"):
        return Route("api", f"{method} /crm/v3/objects/{name}{rest}", path, canonical,
                     scopes=scopes)
    suffix = "/{id}" if rest else ""
    return Route("api", f"{method} /crm/v3/objects/{name}{suffix}", path, canonical,
                 scopes=scopes)


def _v4_batch(method: str, m: re.Match[str], path: str) -> Route:
    a, a_type, a_scopes = _type(m["from"])
    b, b_type, b_scopes = _type(m["to"])
    return Route("api", f"{method} /crm/v4/associations/{a}/{b}/batch/read", path, a_type,
                 b_type, scopes=a_scopes + b_scopes)


def _v4_object(method: str, m: re.Match[str], path: str) -> Route:
    a, a_type, a_scopes = _type(m["from"])
    b, b_type, b_scopes = _type(m["to"])
    return Route("api", f"{method} /crm/v4/objects/{a}/{{id}}/associations/{b}", path, a_type,
                 b_type, scopes=a_scopes + b_scopes)


def _pipelines(method: str, m: re.Match[str], path: str) -> Route:
    name, canonical, scopes = _type(m["type"])
    suffix = "/{pipelineId}" if m["id"] else ""
    return Route("api", f"{method} /crm/v3/pipelines/{name}{suffix}", path, canonical,
                 scopes=scopes)


def _token_meta(method: str, m: re.Match[str], path: str) -> Route:
    kind = m["kind"]
    return Route("oauth", f"{method} /oauth/v1/{kind}/{{token}}", f"/oauth/v1/{kind}/***")


_PATTERNS: list[tuple[re.Pattern[str], Callable[[str, re.Match[str], str], Route]]] = [
    (re.compile(r"^/oauth(?:/\d+)?/authorize/?$"),
     lambda method, m, path: Route("oauth", f"{method} /oauth/authorize", path)),
    (re.compile(r"^/oauth/(?P<v>v1|v3|2026-03)/token(?P<rest>/introspect|/revoke)?$"),
     lambda method, m, path: Route("oauth", f"{method} /oauth/{m['v']}/token{m['rest'] or ''}",
                                   path)),
    (re.compile(r"^/oauth/v1/(?P<kind>access-tokens|refresh-tokens)/[^/]+$"), _token_meta),
    (re.compile(r"^/account-info/(?P<v>v3|2026-03)/details$"),
     lambda method, m, path: Route("api", f"{method} /account-info/{m['v']}/details", path,
                                   scopes=("oauth",))),
    (re.compile(r"^/crm/v3/objects/(?P<type>[^/]+)(?P<rest>/search|/batch/[^/]+|/[^/]+)?$"),
     _objects),
    (re.compile(r"^/crm/v4/associations/(?P<from>[^/]+)/(?P<to>[^/]+)/batch/read$"), _v4_batch),
    (re.compile(r"^/crm/v4/objects/(?P<from>[^/]+)/[^/]+/associations/(?P<to>[^/]+)$"),
     _v4_object),
    (re.compile(r"^/crm/v3/pipelines/(?P<type>[^/]+)(?:/(?P<id>[^/]+))?$"), _pipelines),
]


def classify(method: str, path: str) -> Route:
    if path == "/_sandbox" or path.startswith("/_sandbox/"):
        return Route("admin", f"{method} {path}", path)
    for pattern, build in _PATTERNS:
        match = pattern.match(path)
        if match:
            return build(method, match, path)
    return Route("other", f"{method} {path}", path)
