"""The operator page in a real browser (issue 15 item 3's "Done when"): headless Chromium from
Debian's packages, driven by Python Playwright, against a real api-server and scheduler.

An operator logs in on Airflow's login page, opens "HubSpot ledger" from the navigation (a tab
of its own),
connects the integration through the page (the sandbox's consent), saves its settings, presses
Sync now and waits for the run (polling Airflow's and the ledger's state), sees the open problem
of a deal seeded with a bad line (with its link to the record in HubSpot) and the
reconciliation panel, and downloads the CSV. A screenshot of each step goes to
tests/ui/artifacts/ (gitignored).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from api.helpers import USERS, AirflowApi
from playwright.sync_api import Browser, Page, expect, sync_playwright

from hubspot_ledger.hooks.ledger import LedgerHook

from .conftest import ARTIFACTS

pytestmark = [pytest.mark.e2e, pytest.mark.deployment, pytest.mark.timeout(600)]

RUN_DEADLINE = 240.0  # seconds for the queued run to finish on a loaded 2-CPU machine
BAD_DEAL = "Broken quantity deal"


@pytest.fixture
def browser(chromium: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's own sandbox needs user namespaces that CI containers lack.
        launched = playwright.chromium.launch(executable_path=str(chromium), headless=True,
                                              args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


class Shots:
    """Numbered full-page screenshots of the test's steps."""

    def __init__(self, page: Page) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for old in ARTIFACTS.glob("*.png"):
            old.unlink()
        self.page, self.n = page, 0

    def __call__(self, step: str) -> None:
        self.n += 1
        self.page.screenshot(path=str(ARTIFACTS / f"{self.n:02d}-{step}.png"), full_page=True)


def seed_bad_deal(api: AirflowApi) -> str:
    """A closed-won deal whose only line has quantity "abc": it fails to import."""
    sandbox = api.sandbox
    line = sandbox.upsert("line_items", {"name": "Seats", "quantity": "abc", "price": "100"})
    deal = sandbox.upsert("deals", {"dealname": BAD_DEAL, "dealstage": "closedwon",
                                    "closedate": "2025-04-10T09:00:00Z", "amount": "100.00",
                                    "deal_currency_code": "USD"},
                          associations={"line_items": [line["id"]]})
    return str(deal["id"])


def wait_for_run(api: AirflowApi, integration_id: int, dag_id: str) -> dict[str, object]:
    """Poll Airflow's REST API and the ledger until the DAG's manual run (Sync now) has
    finished. The DAG also runs on its schedule whatever the integration's status (issue 15),
    so a scheduled run may have failed at validate_setup before the page connected it."""
    token = requests.post(f"{api.url}/auth/token", timeout=10, json={
        "username": "admin", "password": USERS["admin"][1]}).json()["access_token"]
    deadline = time.monotonic() + RUN_DEADLINE
    state = None
    while time.monotonic() < deadline:
        runs = requests.get(f"{api.url}/api/v2/dags/{dag_id}/dagRuns", timeout=30,
                            headers={"Authorization": f"Bearer {token}"}).json()
        manual = [r for r in runs.get("dag_runs", []) if r["run_type"] == "manual"]
        state = manual[-1]["state"] if manual else None
        if state in ("success", "failed"):
            run = LedgerHook().runs.latest(integration_id)
            assert run is not None and run["dag_run_id"] == manual[-1]["dag_run_id"], run
            return {"airflow": state, **run}
        time.sleep(1)
    pytest.fail(f"the run of {dag_id} did not finish within {RUN_DEADLINE:g}s "
                f"(last state {state})")


def test_an_operator_runs_an_integration_from_the_page(
        ui_airflow: AirflowApi, member_books: Callable[..., int], scheduler: Path,
        browser: Browser) -> None:
    integration_id = member_books("Browser Books")
    bad_deal = seed_bad_deal(ui_airflow)
    ui_airflow.reserialize()  # Airflow learns the integration's DAG, as the DAG processor would
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    shot = Shots(page)

    # Log in through Airflow's own login page.
    page.goto(f"{ui_airflow.url}/")
    page.locator("input[name=username]").fill("operator")
    page.locator("input[name=password]").fill(USERS["operator"][1])
    shot("airflow-login")
    page.get_by_role("button", name="Sign in").click()
    browse = page.get_by_role("button", name="Browse")
    expect(browse).to_be_visible(timeout=60_000)
    shot("airflow-home")
    browse.click()
    nav = page.get_by_role("menuitem", name="HubSpot ledger")
    expect(nav).to_be_visible()
    shot("airflow-browse-menu")

    # The page, from the navigation: Airflow opens it in a tab of its own.
    with context.expect_page() as opened:
        nav.click()
    page = opened.value
    shot.page = page
    expect(page.get_by_role("heading", name="HubSpot integrations")).to_be_visible(
        timeout=60_000)
    expect(page.get_by_text("Browser Books")).to_be_visible()
    shot("operator-page")
    page.get_by_role("link", name=f"Integration {integration_id}").click()
    expect(page.locator("#status")).to_contain_text("disconnected")
    shot("integration-disconnected")

    # Connect: the browser goes to HubSpot's (the sandbox's) consent and back to a page.
    page.get_by_role("button", name="Connect HubSpot").click()
    expect(page.get_by_role("heading", name="HubSpot connected")).to_be_visible(
        timeout=60_000)
    portal = str(ui_airflow.sandbox.portal_id)
    expect(page.get_by_role("status")).to_contain_text(f"portal {portal}")
    shot("connected")
    page.get_by_role("link", name="Back to the operator page").click()
    page.get_by_role("link", name=f"Integration {integration_id}").click()
    expect(page.locator("#status")).to_contain_text("connected")

    # Settings, chosen from the organization's accounts and companies.
    for field, code in (("ar_account", "1100"), ("deferred_revenue_account", "2400"),
                        ("expense_account", "5000"), ("income_account", "4000"),
                        ("clearing_account", "1190")):
        page.locator(f"select[name={field}]").select_option(code)
    page.locator("select[name=company]").select_option("Acme Ltd")
    shot("settings-filled")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_have_text("Settings saved.")
    assert LedgerHook().settings.get(integration_id).company == "Acme Ltd"
    shot("settings-saved")

    # Sync now, then wait for the run on observable state (Airflow's run, the ledger's row).
    page.get_by_role("button", name="Sync now").click()
    expect(page.get_by_role("status")).to_contain_text("Sync queued")
    shot("sync-queued")
    dag_id = page.locator("#dag-id").inner_text()
    run = wait_for_run(ui_airflow, integration_id, dag_id)
    assert run["airflow"] == "success" and run["status"] == "success", run
    page.get_by_role("link", name="All integrations").click()
    page.get_by_role("link", name=f"Integration {integration_id}").click()
    expect(page.locator("#last-sync-status")).to_contain_text("success")
    expect(page.locator("#last-dag-run")).to_contain_text("success")
    expect(page.locator("#report")).to_contain_text("deals")

    # The open problem, linked to the deal in HubSpot, with when it first failed.
    problem = page.locator("#problems tbody tr", has_text=bad_deal)
    expect(problem).to_contain_text('quantity "abc" is not a number')
    link = problem.get_by_role("link", name=f"deal {bad_deal}")
    expect(link).to_have_attribute(
        "href", f"https://app.hubspot.com/contacts/{portal}/record/0-3/{bad_deal}")
    expect(problem.locator("td").nth(2)).to_contain_text("UTC")
    shot("open-problem")

    # The reconciliation panel and its CSV.
    page.get_by_role("link", name="Reconciliation with HubSpot").click()
    panel = page.locator("#reconciliation")
    expect(panel).to_contain_text("2025-04")
    expect(page.locator("#differences")).to_contain_text(BAD_DEAL)
    expect(page.locator("#differences tr", has_text=BAD_DEAL)).to_contain_text("failed")
    shot("reconciliation")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV (by month)").click()
    saved = ARTIFACTS / "reconciliation-summary.csv"
    download.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text())))
    april = [r for r in rows if r["month"] == "2025-04" and r["currency"] == "USD"]
    assert april and "1 failed (100.00)" in april[0]["explanation"]
    context.close()
