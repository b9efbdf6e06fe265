"""The operator page: a FastAPI app of server-rendered HTML, mounted by the plugin at
`/hubspot-ledger` and reached from Airflow's navigation (an `external_views` entry, see
`plugins/hubspot_ledger_plugin.py`; it opens the page in its own tab).

Routes (below the mount):
- `GET /`: every integration the user may see;
- `GET /integrations/{id}`: status, last run and its report, schedule, open problems, the
  settings form, Connect/Reconnect, Sync now;
- `POST /integrations/{id}/settings`: saves settings (`integration_settings.save_settings`);
- `POST /integrations/{id}/connect`: sends the browser to HubSpot's consent page;
- `POST /integrations/{id}/sync`: queues a run of the DAG, as trigger-sync does;
- `GET /integrations/{id}/reconciliation`: HubSpot's closed-won totals beside the ledger;
- `GET /integrations/{id}/reconciliation.csv?table=summary|detail`: the same as CSV.

Who may do what is api/auth.py's (see `session` for the login and the forms' token).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request, status
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hubspot_ledger import reconcile as recon
from hubspot_ledger.api.auth import CHANGE, CONNECT, READ, RUN, Access, Need, authorize
from hubspot_ledger.api.dag_runs import queue_run
from hubspot_ledger.connect import auth_url
from hubspot_ledger.errors import InvalidInput, UserFacingError
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.integration_settings import ACCOUNTS, save_settings, validate_setup
from hubspot_ledger.ui import queries, views
from hubspot_ledger.ui.hubspot_totals import closed_won_deals
from hubspot_ledger.ui.pages import (
    DEPLOYMENT_PROBLEMS,
    SECURITY_HEADERS,
    message_page,
    page_path,
    render,
)
from hubspot_ledger.ui.session import check_form, form_token, page_user

# The settings of README "Beyond the reference connector" (issue 14), as the form names them.
BEYOND_FIELDS = ("invoice_parties", "won_stages", "recognition")


class LoginRequired(Exception):
    """No valid Airflow session: the page answers with a link to Airflow's login."""


async def current_user(request: Request) -> BaseUser:
    user = await page_user(request)
    if user is None:
        raise LoginRequired
    return user


UserDep = Annotated[BaseUser, Depends(current_user)]


def _access(integration_id: int, user: BaseUser, need: Need) -> Access:
    return authorize(integration_id, user, need)


def _detail_page(request: Request, access: Access, *, notice: str | None = None,
                 error: str | None = None, submitted: dict[str, Any] | None = None,
                 status_code: int = 200) -> Response:
    page = views.detail(access, submitted)
    return render("integration.html", status_code, page=page, accounts=ACCOUNTS,
                  csrf=form_token(request), notice=notice, error=error, user=access.user)


def _to_detail(integration_id: int, **query: str) -> RedirectResponse:
    from urllib.parse import urlencode

    suffix = f"?{urlencode(query)}" if query else ""
    return RedirectResponse(f"../{integration_id}{suffix}",
                            status_code=status.HTTP_303_SEE_OTHER)


def create_app() -> FastAPI:
    app = FastAPI(title="HubSpot ledger operator page", openapi_url=None, docs_url=None,
                  redoc_url=None)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: Exception) -> Response:
        login = get_auth_manager().get_url_login(next_url=page_path())
        return render("login.html", status.HTTP_401_UNAUTHORIZED, login_url=login)

    async def failed(request: Request, exc: Exception) -> Response:
        return message_page(exc)

    # The causes we know answer a page with their status and message (api/app.py's, as HTML);
    # anything else is a 500 page (and RequestGuard logs its type and first line only).
    for known in (UserFacingError, *DEPLOYMENT_PROBLEMS, Exception):
        app.add_exception_handler(known, failed)

    async def refused(request: Request, exc: Exception) -> Response:
        return message_page(exc, title="Not allowed")

    app.add_exception_handler(HTTPException, refused)

    @app.get("/")
    def index(request: Request, user: UserDep) -> Response:
        return render("index.html", rows=views.overview(user), user=user)

    @app.get("/integrations/{integration_id}")
    def integration(request: Request, integration_id: int, user: UserDep,
                    queued: str | None = None, saved: bool = False,
                    ) -> Response:
        access = _access(integration_id, user, READ)
        notice = (f"Sync queued: run {queued}. The scheduler starts it; this page shows it "
                  "when it has run." if queued else "Settings saved." if saved else None)
        return _detail_page(request, access, notice=notice)

    @app.post("/integrations/{integration_id}/settings")
    async def settings(request: Request, integration_id: int, user: UserDep,
                       csrf: Annotated[str, Form()] = "") -> Response:
        check_form(request, csrf)
        form = await request.form()
        values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        accounts = {a.field: values.get(a.field) or None for a in ACCOUNTS}
        company = values.get("company") or None
        sync_invoices = values.get("sync_invoices") == "on"
        # Issue 14's settings; a field the form did not send keeps its saved value.
        beyond = {k: values[k].strip() or None for k in BEYOND_FIELDS if k in values}

        def save() -> Response:
            access = _access(integration_id, user, CHANGE)
            try:
                save_settings(integration_id, accounts={k: v for k, v in accounts.items()
                                                        if v is not None},
                              company=company, sync_invoices=sync_invoices,
                              invoice_parties=beyond.get("invoice_parties"),
                              won_stages=beyond.get("won_stages"),
                              recognition=beyond.get("recognition"))
            except InvalidInput as exc:  # 422 with the message, the form as it was sent
                saved = LedgerHook().settings.get(integration_id)
                submitted = {**accounts, "company": company, "sync_invoices": sync_invoices,
                             **{k: beyond.get(k) or str(getattr(saved, k))
                                for k in BEYOND_FIELDS}}
                return _detail_page(request, access, error=str(exc), submitted=submitted,
                                    status_code=exc.http_status)
            return _to_detail(integration_id, saved="1")

        return await run_in_threadpool(save)

    @app.post("/integrations/{integration_id}/connect")
    async def connect(request: Request, integration_id: int, user: UserDep,
                      csrf: Annotated[str, Form()] = "") -> Response:
        check_form(request, csrf)

        def consent() -> Response:
            access = _access(integration_id, user, CONNECT)
            return RedirectResponse(auth_url(access.integration_id),
                                    status_code=status.HTTP_303_SEE_OTHER)

        return await run_in_threadpool(consent)

    @app.post("/integrations/{integration_id}/sync")
    async def sync(request: Request, integration_id: int, user: UserDep,
                   csrf: Annotated[str, Form()] = "",
                   full_refresh: Annotated[str | None, Form()] = None) -> Response:
        check_form(request, csrf)

        def queue() -> Response:
            access = _access(integration_id, user, RUN)
            try:
                validate_setup(integration_id)  # as trigger-sync: say it now, not in a task log
            except UserFacingError as exc:
                return _detail_page(request, access, error=str(exc),
                                    status_code=exc.http_status)
            run_id, _ = queue_run(access.dag_id, conf={"full_refresh": full_refresh == "on"},
                                  user_name=user.get_name())
            return _to_detail(integration_id, queued=run_id)

        return await run_in_threadpool(queue)

    def _reconciliation(access: Access) -> tuple[Any, recon.Reconciliation]:
        ledger = LedgerHook()
        integration = ledger.integrations.get(access.integration_id)
        deals = closed_won_deals(integration, ledger=ledger)
        with ledger.session() as conn:
            contracts = queries.contracts(conn, access.integration_id)
            invoices = queries.invoices(conn, access.integration_id)
            problems = {p.remote_id: p.message
                        for p in queries.open_problems(conn, access.integration_id, 100_000)
                        if p.remote_type == "deal" and p.remote_id}
        return integration, recon.reconcile(deals, contracts, invoices, problems)

    @app.get("/integrations/{integration_id}/reconciliation")
    def reconciliation(request: Request, integration_id: int, user: UserDep) -> Response:
        access = _access(integration_id, user, READ)
        integration, result = _reconciliation(access)
        explained = result.detail[result.detail["explanation"] != ""]
        return render("reconciliation.html", integration=integration, user=user,
                      summary=result.summary.to_dict("records"),
                      detail=explained.to_dict("records"),
                      read_at=dt.datetime.now(dt.UTC))

    @app.get("/integrations/{integration_id}/reconciliation.csv")
    def reconciliation_csv(integration_id: int, user: UserDep,
                           table: Annotated[str, Query(pattern="^(summary|detail)$")]
                           = "summary") -> Response:
        access = _access(integration_id, user, READ)
        _, result = _reconciliation(access)
        frame = result.summary if table == "summary" else result.detail
        name = f"reconciliation-integration-{integration_id}-{table}.csv"
        return Response(recon.to_csv(frame), media_type="text/csv; charset=utf-8",
                        headers={**SECURITY_HEADERS,
                                 "Content-Disposition": f'attachment; filename="{name}"'})

    return app
