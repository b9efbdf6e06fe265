"""HubSpot's two path families (issue 14 item 5, hubspot-api.md §0): the dated paths of the
default API version and the legacy v3/v4 ones, built in one place from `hubspot_default`'s
`api_version` extra; an unknown version is refused before anything is sent."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

import hubspot_ledger
from hubspot_ledger.hooks.hubspot import HubSpotHook
from hubspot_ledger.hooks.hubspot_paths import (
    API_VERSIONS,
    DEFAULT_API_VERSION,
    UnknownApiVersion,
    api_paths,
)
from hubspot_ledger.ratelimit import bucket_of

pytestmark = pytest.mark.unit

PRODUCT = Path(hubspot_ledger.__file__).parent


def test_the_default_is_the_newest_dated_version() -> None:
    assert DEFAULT_API_VERSION == "2026-03"
    assert api_paths() == api_paths("") == api_paths(None) == api_paths("2026-03")
    assert set(API_VERSIONS) == {"2026-03", "v3"}


def test_dated_paths() -> None:
    paths = api_paths("2026-03")
    assert paths.objects("products") == "/crm/objects/2026-03/products"
    assert paths.search("deals") == "/crm/objects/2026-03/deals/search"
    assert paths.batch_read("line_items") == "/crm/objects/2026-03/line_items/batch/read"
    assert paths.associations_batch_read("deals", "companies") == \
        "/crm/associations/2026-03/deals/companies/batch/read"
    assert paths.token == "/oauth/2026-03/token"
    assert paths.introspect == "/oauth/2026-03/token/introspect"
    assert paths.account_details == "/account-info/2026-03/details"
    # No dated pipelines path in the reference: the v3 one at every version.
    assert paths.pipelines("deals") == "/crm/v3/pipelines/deals"


def test_v3_keeps_the_legacy_paths() -> None:
    paths = api_paths("v3")
    assert paths.objects("products") == "/crm/v3/objects/products"
    assert paths.search("deals") == "/crm/v3/objects/deals/search"
    assert paths.batch_read("line_items") == "/crm/v3/objects/line_items/batch/read"
    assert paths.associations_batch_read("deals", "companies") == \
        "/crm/v4/associations/deals/companies/batch/read"
    assert paths.token == "/oauth/v3/token"
    assert paths.introspect == "/oauth/v3/token/introspect"
    assert paths.account_details == "/account-info/v3/details"
    assert paths.pipelines("deals") == "/crm/v3/pipelines/deals"


@pytest.mark.parametrize("version", API_VERSIONS)
def test_search_spends_the_search_budget_in_either_family(version: str) -> None:
    paths = api_paths(version)
    assert bucket_of(paths.search("deals")) == "search"
    assert bucket_of(paths.objects("products")) == "general"
    assert bucket_of(paths.batch_read("deals")) == "general"
    assert bucket_of(paths.associations_batch_read("deals", "companies")) == "general"


@pytest.mark.parametrize("bad", ["v4", "V3", "2026-3", "2025-09", "latest", 3, ["v3"]])
def test_an_unknown_version_is_refused_saying_what_to_write(bad: object) -> None:
    with pytest.raises(UnknownApiVersion) as err:
        api_paths(bad)
    message = str(err.value)
    assert "api_version extra of the hubspot_default connection" in message
    assert repr(str(bad)) in message and "2026-03, v3" in message
    assert isinstance(err.value, AirflowFailException)  # no task retry can fix it


def test_a_hook_given_an_unknown_version_fails_as_it_is_built() -> None:
    with pytest.raises(UnknownApiVersion, match="'v2'"):
        HubSpotHook(api_version="v2")
    assert HubSpotHook(api_version="v3").paths.token == "/oauth/v3/token"


def _connection(monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", json.dumps({
        "conn_type": "http", "host": "http://127.0.0.1:9", "login": "id", "password": "secret",
        "extra": {"redirect_uri": "http://localhost/cb", **extra}}))


def test_the_connections_extra_chooses_the_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(monkeypatch)
    assert HubSpotHook().paths == api_paths("2026-03")
    _connection(monkeypatch, api_version="v3")
    assert HubSpotHook().paths == api_paths("v3")
    assert "api_version='v3'" in repr(HubSpotHook().app)


def test_an_unknown_version_in_the_connection_stops_the_first_call(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Read when the hook first reads its connection, before any request (the host here
    answers nothing: a request would fail otherwise)."""
    _connection(monkeypatch, api_version="2026-13")
    hook = HubSpotHook()
    with pytest.raises(UnknownApiVersion, match="'2026-13'"):
        hook.consent_url("state")
    with pytest.raises(UnknownApiVersion):
        hook.refresh_tokens("refresh")


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def test_no_hubspot_path_is_spelled_outside_hubspot_paths() -> None:
    """Every HubSpot API path comes from hubspot_paths.py (docstrings may name them)."""
    prefixes = ("/crm/", "/oauth/v", "/oauth/2", "/account-info/")
    docstrings = set()
    for path in PRODUCT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and \
                    ast.get_docstring(node, clean=False) is not None:
                docstrings.add(ast.get_docstring(node, clean=False))
    spelled = [f"{path.relative_to(PRODUCT)}:{line} {text!r}"
               for path in sorted(PRODUCT.rglob("*.py")) if path.name != "hubspot_paths.py"
               for line, text in _string_constants(path)
               if text not in docstrings and any(p in text for p in prefixes)]
    assert spelled == []
