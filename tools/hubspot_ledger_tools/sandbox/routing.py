"""What a request is, before any handler runs: admin or HubSpot call, its normalized endpoint
name, object types and needed scopes (for the request log, fault rules, auth and rate limits).

HubSpot serves two path families with the same bodies (hubspot-api.md §0): the legacy
`/crm/v3/objects`, `/crm/v4/associations`, `/oauth/v3`, `/account-info/v3` and the dated
`/crm/objects/2026-03`, `/crm/associations/2026-03`, `/oauth/2026-03`, `/account-info/2026-03`.
A dated call is routed to the legacy handler (`canonical_path`), and its endpoint name is the
legacy one: endpoint names are version-neutral ("POST /crm/v3/objects/deals/search" is the
deal search whichever family called it), so fault rules and tests that name endpoints hold at
either version. The log keeps the path as sent and its version (`api_version`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from hubspot_ledger_tools.sandbox.schema import resolve

# Date-versioned API versions served; each answers like the legacy paths it replaces.
DATED_VERSIONS = ("2026-03",)
# Dated prefixes and the legacy ones they stand for. The CRM ones are rewritten before routing
# (their handlers are the legacy routes); OAuth and account routes take either version.
ALIASES = tuple(alias for v in DATED_VERSIONS for alias in (
    (f"/crm/objects/{v}/", "/crm/v3/objects/"),
    (f"/crm/associations/{v}/", "/crm/v4/associations/")))
_LEGACY_SPELLING = (*ALIASES, *(alias for v in DATED_VERSIONS for alias in (
    (f"/oauth/{v}/", "/oauth/v3/"), (f"/account-info/{v}/", "/account-info/v3/"))))
_VERSION = re.compile(r"^/(?:crm/(?:objects/|associations/)?|oauth/|account-info/)"
                      r"(?P<v>v\d+|\d{4}-\d{2})(?:/|$)")


@dataclass(frozen=True)
class Route:
    kind: str  # admin | oauth | api | other
    endpoint: str  # version-neutral, e.g. "POST /crm/v3/objects/deals/search"
    path: str  # the path as sent and logged (token segments masked)
    object_type: str | None = None
    to_object_type: str | None = None
    search: bool = False
    scopes: tuple[str, ...] = ()
    canonical: str = ""  # `path` spelled in the legacy family (fault rules' `path` globs)
    api_version: str | None = None  # the version segment of the path as sent ("2026-03", "v3")


def _respelled(path: str, aliases: tuple[tuple[str, str], ...]) -> str:
    for alias, target in aliases:
        if path.startswith(alias):
            return target + path[len(alias):]
    return path


def canonical_path(path: str) -> str:
    """The path the handlers are routed on: a dated CRM path as its legacy one."""
    return _respelled(path, ALIASES)


def legacy_spelling(path: str) -> str:
    """Any dated path as the legacy one it stands for (`/oauth/2026-03/token` → `/oauth/v3/…`)."""
    return _respelled(path, _LEGACY_SPELLING)


def api_version(path: str) -> str | None:
    """The API version a path names (`v3`, `v4`, `v1`, `2026-03`), None if it names none."""
    match = _VERSION.match(path)
    return match["v"] if match else None


def _neutral(version: str) -> str:
    """A version as endpoint names spell it: a dated one as the legacy v3 it replaces."""
    return "v3" if version in DATED_VERSIONS else version


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
     lambda method, m, path: Route(
         "oauth", f"{method} /oauth/{_neutral(m['v'])}/token{m['rest'] or ''}", path)),
    (re.compile(r"^/oauth/v1/(?P<kind>access-tokens|refresh-tokens)/[^/]+$"), _token_meta),
    (re.compile(r"^/account-info/(?P<v>v3|2026-03)/details$"),
     lambda method, m, path: Route("api", f"{method} /account-info/{_neutral(m['v'])}/details",
                                   path, scopes=("oauth",))),
    (re.compile(r"^/crm/v3/objects/(?P<type>[^/]+)(?P<rest>/search|/batch/[^/]+|/[^/]+)?$"),
     _objects),
    (re.compile(r"^/crm/v4/associations/(?P<from>[^/]+)/(?P<to>[^/]+)/batch/read$"), _v4_batch),
    (re.compile(r"^/crm/v4/objects/(?P<from>[^/]+)/[^/]+/associations/(?P<to>[^/]+)$"),
     _v4_object),
    (re.compile(r"^/crm/v3/pipelines/(?P<type>[^/]+)(?:/(?P<id>[^/]+))?$"), _pipelines),
]


def classify(method: str, path: str) -> Route:
    """The route of a request path as sent (either family)."""
    if path == "/_sandbox" or path.startswith("/_sandbox/"):
        return Route("admin", f"{method} {path}", path, canonical=path)
    canonical = canonical_path(path)
    for pattern, build in _PATTERNS:
        match = pattern.match(canonical)
        if match:
            route = build(method, match, path)
            return replace(route, canonical=legacy_spelling(route.path),
                           api_version=api_version(path))
    return Route("other", f"{method} {path}", path, canonical=legacy_spelling(path),
                 api_version=api_version(path))
