"""The operator page over HTTP on a real api-server: Airflow's login (the UI's `_token` cookie),
who sees what (api/auth.py's checks), forms that only the page can post, settings errors as
422 pages, hostile HubSpot text shown inert, the reconciliation's CSV neutralised, and the OAuth
callback ending on a page for a browser while scripts keep JSON."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable
from urllib.parse import urlparse

import pytest
import requests
from api.helpers import PREFIX, USERS, AirflowApi

from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load.records import IntegrationStatus

from .conftest import UI

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'
FORMULA = '=HYPERLINK("http://evil.example","Click")'


def browser(api: AirflowApi, user: str | None = "operator") -> requests.Session:
    """A session as Airflow's UI leaves it after login: the JWT in the `_token` cookie."""
    session = requests.Session()
    if user:
        response = requests.post(f"{api.url}/auth/token", timeout=10,
                                 json={"username": user, "password": USERS[user][1]})
        assert response.status_code == 201, response.text
        session.cookies.set("_token", response.json()["access_token"], domain="127.0.0.1")
    return session


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "the page has no form token"
    return found.group(1)


def page(api: AirflowApi, session: requests.Session, path: str = "/",
         **kwargs: object) -> requests.Response:
    return session.get(f"{api.url}{UI}{path}", timeout=30, allow_redirects=False,
                       **kwargs)  # type: ignore[arg-type]


def connect(api: AirflowApi, session: requests.Session, integration_id: int) -> None:
    """Connect through the page's Connect button and the sandbox's consent, as a browser."""
    form = page(api, session, f"/integrations/{integration_id}")
    response = session.post(f"{api.url}{UI}/integrations/{integration_id}/connect",
                            data={"csrf": csrf_of(form.text)}, allow_redirects=False,
                            timeout=30)
    assert response.status_code == 303, response.text
    landed = session.get(response.headers["location"], timeout=30,
                         headers={"Accept": "text/html"})
    assert landed.status_code == 200, landed.text
    assert "HubSpot connected" in landed.text


def test_anonymous_visitors_are_sent_to_airflows_login(ui_airflow: AirflowApi,
                                                       member_books: Callable[..., int]
                                                       ) -> None:
    member_books("Visible Only To Members")
    for session in (browser(ui_airflow, None), requests.Session()):
        session.cookies.set("_token", "not-a-jwt", domain="127.0.0.1")
        for path in ("/", "/integrations/1", "/integrations/1/reconciliation.csv"):
            response = page(ui_airflow, session, path)
            assert response.status_code == 401
            assert "Visible Only To Members" not in response.text
            assert "Sign in to Airflow" in response.text
            assert "/auth/login" in response.text


def test_each_user_sees_only_their_organizations(ui_airflow: AirflowApi,
                                                 member_books: Callable[..., int]) -> None:
    ours = member_books("Ours Inc")
    theirs = LedgerHook().integrations.create("Theirs Inc", dt.date(2025, 1, 1))
    listing = page(ui_airflow, browser(ui_airflow, "operator"))
    assert listing.status_code == 200
    assert "Ours Inc" in listing.text and "Theirs Inc" not in listing.text
    assert f"integrations/{ours}" in listing.text

    other = page(ui_airflow, browser(ui_airflow, "operator"), f"/integrations/{theirs}")
    assert other.status_code == 404
    assert "Theirs Inc" not in other.text

    admin = page(ui_airflow, browser(ui_airflow, "admin"))
    assert "Ours Inc" in admin.text and "Theirs Inc" in admin.text
    assert "Ours Inc" not in page(ui_airflow, browser(ui_airflow, "alice")).text


def test_a_viewer_reads_but_cannot_change(ui_airflow: AirflowApi,
                                          member_books: Callable[..., int]) -> None:
    integration_id = member_books("Viewed Ltd")
    viewer = browser(ui_airflow, "viewer")
    html = page(ui_airflow, viewer, f"/integrations/{integration_id}").text
    assert "Save settings" not in html and "Sync now" not in html
    response = viewer.post(f"{ui_airflow.url}{UI}/integrations/{integration_id}/settings",
                           data={"csrf": csrf_of(html), "company": "Acme Ltd"}, timeout=30)
    assert response.status_code == 403
    assert "may not change" in response.text
    assert LedgerHook().settings.get(integration_id).company is None


def test_forms_need_the_pages_token(ui_airflow: AirflowApi,
                                    member_books: Callable[..., int]) -> None:
    integration_id = member_books("Forged Corp")
    operator = browser(ui_airflow, "operator")
    url = f"{ui_airflow.url}{UI}/integrations/{integration_id}/settings"
    others_token = csrf_of(page(ui_airflow, browser(ui_airflow, "admin"),
                                f"/integrations/{integration_id}").text)
    own_token = csrf_of(page(ui_airflow, operator, f"/integrations/{integration_id}").text)
    for data, headers in (({"company": "Acme Ltd"}, {}),
                          ({"company": "Acme Ltd", "csrf": others_token}, {}),
                          ({"company": "Acme Ltd", "csrf": own_token},
                           {"Origin": "https://evil.example"})):
        response = operator.post(url, data=data, headers=headers, timeout=30)
        assert response.status_code == 403, response.text
        assert "did not come from the operator page" in response.text
    assert LedgerHook().settings.get(integration_id).company is None


def test_settings_are_validated_as_the_api_does(ui_airflow: AirflowApi,
                                                member_books: Callable[..., int]) -> None:
    integration_id = member_books("Settings Co")
    operator = browser(ui_airflow, "operator")
    html = page(ui_airflow, operator, f"/integrations/{integration_id}").text
    # The form offers the organization's accounts of the right type and its company.
    assert re.search(r'<option value="1100"\s*>1100 Accounts receivable \(asset\)', html)
    assert 'value="Acme Ltd"' in html
    url = f"{ui_airflow.url}{UI}/integrations/{integration_id}/settings"
    wrong = operator.post(url, data={"csrf": csrf_of(html), "ar_account": "4000"}, timeout=30)
    assert wrong.status_code == 422
    assert "account &#39;4000&#39; is of type income" in wrong.text
    assert LedgerHook().settings.get(integration_id).ar_account is None

    saved = operator.post(url, timeout=30, data={
        "csrf": csrf_of(html), "ar_account": "1100", "deferred_revenue_account": "2400",
        "expense_account": "5000", "income_account": "4000", "clearing_account": "1190",
        "company": "Acme Ltd", "sync_invoices": "on"})
    assert saved.status_code == 200 and "Settings saved." in saved.text
    settings = LedgerHook().settings.get(integration_id)
    assert (settings.ar_account, settings.company, settings.sync_invoices) == (
        "1100", "Acme Ltd", True)


def test_the_beyond_reference_settings_are_on_the_form(ui_airflow: AirflowApi,
                                                       member_books: Callable[..., int]) -> None:
    """Issue 14: invoice parties, won stages and recognition are set from the page, validated
    as `settings set` validates them, and shown as saved."""
    integration_id = member_books("Beyond Form Co")
    operator = browser(ui_airflow, "operator")
    html = page(ui_airflow, operator, f"/integrations/{integration_id}").text
    assert '<option value="unknown" selected>' in html  # the reference behaviour by default
    assert '<option value="immediate" selected>' in html
    url = f"{ui_airflow.url}{UI}/integrations/{integration_id}/settings"
    wrong = operator.post(url, timeout=30, data={
        "csrf": csrf_of(html), "invoice_parties": "everyone", "won_stages": "closedwon",
        "recognition": "immediate"})
    assert wrong.status_code == 422 and "invoice" in wrong.text.lower()
    assert LedgerHook().settings.get(integration_id).invoice_parties == "unknown"

    saved = operator.post(url, timeout=30, data={
        "csrf": csrf_of(html), "invoice_parties": "hubspot", "won_stages": "all-pipelines",
        "recognition": "hubspot-terms"})
    assert saved.status_code == 200 and "Settings saved." in saved.text
    settings = LedgerHook().settings.get(integration_id)
    assert (settings.invoice_parties, settings.won_stages, settings.recognition) == (
        "hubspot", "all-pipelines", "hubspot-terms")
    assert '<option value="hubspot" selected>' in saved.text
    assert 'name="won_stages" value="all-pipelines"' in saved.text
    assert '<option value="hubspot-terms" selected>' in saved.text


def test_hostile_hubspot_text_is_shown_inert_and_exported_neutralised(
        ui_airflow: AirflowApi, member_books: Callable[..., int]) -> None:
    sandbox = ui_airflow.sandbox
    integration_id = member_books("Hostile Org", configured=True)
    with LedgerHook().new_connection() as conn:  # a hostile accounting company name, as data
        org = LedgerHook().integrations.get(integration_id).organization_id
        conn.execute("INSERT INTO ledger.companies (organization_id, name, currency) "
                     "VALUES (%s, %s, 'USD')", [org, HOSTILE])
        conn.commit()
    operator = browser(ui_airflow, "operator")
    connect(ui_airflow, operator, integration_id)
    for name in (HOSTILE, FORMULA):
        sandbox.upsert("deals", {"dealname": name, "dealstage": "closedwon",
                                 "closedate": "2025-06-01T10:00:00Z", "amount": "123.45",
                                 "deal_currency_code": "USD"})

    detail = page(ui_airflow, operator, f"/integrations/{integration_id}").text
    panel = page(ui_airflow, operator, f"/integrations/{integration_id}/reconciliation")
    assert panel.status_code == 200
    for html in (detail, panel.text):
        assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;&lt;img src=x" in detail
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in panel.text
    assert "not synced yet" in panel.text
    assert "script-src" not in panel.headers["content-security-policy"]  # default-src 'none'
    assert "frame-ancestors 'self'" in panel.headers["content-security-policy"]

    export = page(ui_airflow, operator, f"/integrations/{integration_id}/reconciliation.csv",
                  params={"table": "detail"})
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    rows = {r["deal"]: r for r in csv.DictReader(io.StringIO(export.text))}
    assert "'" + FORMULA in rows and FORMULA not in rows
    assert rows["'" + FORMULA]["hubspot_amount"] == "123.45"
    assert HOSTILE in rows  # plain text in a CSV: a spreadsheet does not run it


def test_the_oauth_callback_ends_on_a_page_for_a_browser_and_json_otherwise(
        ui_airflow: AirflowApi, member_books: Callable[..., int]) -> None:
    integration_id = member_books("Callback Co")
    operator = browser(ui_airflow, "operator")
    connect(ui_airflow, operator, integration_id)
    integration = LedgerHook().integrations.get(integration_id)
    assert integration.status == IntegrationStatus.CONNECTED

    callback = f"{ui_airflow.url}{PREFIX}/oauth-callback/"
    refused = requests.get(callback, params={"code": "abc", "state": "forged.state"},
                           headers={"Accept": "text/html,application/xhtml+xml"}, timeout=30)
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("text/html")
    assert "HubSpot not connected" in refused.text
    assert "Back to the operator page" in refused.text

    as_json = requests.get(callback, params={"code": "abc", "state": "forged.state"},
                           timeout=30)
    assert as_json.status_code == 400
    assert set(as_json.json()) == {"detail"}
    assert urlparse(callback).path == f"{PREFIX}/oauth-callback/"
