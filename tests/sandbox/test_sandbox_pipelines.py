"""The sandbox's deal pipelines: HubSpot's default one, and with `pipelines=two` a renewals
pipeline with its own won stage (issue 14's won-stages setting)."""

from __future__ import annotations

import pytest

from hubspot_ledger_tools.sandbox.config import parse_scale
from hubspot_ledger_tools.sandbox.generator import generate
from hubspot_ledger_tools.sandbox.testing import SandboxAdminError, SandboxServer

from .helpers import Api


def _won(pipeline: dict) -> list[str]:
    return [s["id"] for s in pipeline["stages"]
            if s["metadata"] == {"isClosed": "true", "probability": "1.0"}]


@pytest.mark.integration
def test_one_pipeline_by_default(api: Api) -> None:
    assert [p["id"] for p in api.get("/crm/v3/pipelines/deals").json()["results"]] == [
        "default"]
    assert api.get("/crm/v3/pipelines/deals/renewals").status_code == 404


@pytest.mark.integration
def test_two_pipelines_each_with_its_won_stage(sb: SandboxServer, api: Api) -> None:
    sb.update_config(pipelines="two")
    pipelines = api.get("/crm/v3/pipelines/deals").json()["results"]
    assert [(p["id"], _won(p)) for p in pipelines] == [
        ("default", ["closedwon"]), ("renewals", ["71900002"])]
    assert api.get("/crm/v3/pipelines/deals/renewals").json()["label"] == "Renewals"
    with pytest.raises(SandboxAdminError, match="pipelines must be default or two"):
        sb.update_config(pipelines="three")


def _beyond_data(beyond: bool) -> tuple[list[tuple[str, str]], list[str]]:
    data = generate(7, parse_scale("small"), beyond=beyond)
    deals = [(str(d.props["pipeline"]), str(d.props["dealstage"]))
             for d in data.tables["deals"].records.values()]
    starts = [str(line.props["hs_recurring_billing_start_date"])
              for line in data.tables["line_items"].records.values()
              if "hs_recurring_billing_start_date" in line.props]
    return deals, starts


@pytest.mark.unit
def test_beyond_data_has_renewals_and_billing_start_dates() -> None:
    deals, starts = _beyond_data(True)
    renewals = {stage for pipeline, stage in deals if pipeline == "renewals"}
    assert renewals <= {"71900001", "71900002", "71900003"} and "71900002" in renewals
    assert starts and all(s.endswith("-01") for s in starts)
    plain_deals, plain_starts = _beyond_data(False)
    assert {p for p, _ in plain_deals} == {"default"} and plain_starts == []
    assert len(plain_deals) == len(deals)


@pytest.mark.integration
def test_a_beyond_portal_serves_the_renewals_pipeline() -> None:
    with SandboxServer(seed=1, scale="tiny", beyond=True) as server:
        api = Api(server.url, server.issue_tokens()["access_token"])
        ids = [p["id"] for p in api.get("/crm/v3/pipelines/deals").json()["results"]]
    assert ids == ["default", "renewals"]
