"""The sandbox's deal pipelines: HubSpot's default one, and with `pipelines=two` a renewals
pipeline with its own won stage (issue 14's won-stages setting)."""

from __future__ import annotations

import pytest

from hubspot_ledger_tools.sandbox.testing import SandboxAdminError, SandboxServer

from .helpers import Api

pytestmark = pytest.mark.integration


def _won(pipeline: dict) -> list[str]:
    return [s["id"] for s in pipeline["stages"]
            if s["metadata"] == {"isClosed": "true", "probability": "1.0"}]


def test_one_pipeline_by_default(api: Api) -> None:
    assert [p["id"] for p in api.get("/crm/v3/pipelines/deals").json()["results"]] == [
        "default"]
    assert api.get("/crm/v3/pipelines/deals/renewals").status_code == 404


def test_two_pipelines_each_with_its_won_stage(sb: SandboxServer, api: Api) -> None:
    sb.update_config(pipelines="two")
    pipelines = api.get("/crm/v3/pipelines/deals").json()["results"]
    assert [(p["id"], _won(p)) for p in pipelines] == [
        ("default", ["closedwon"]), ("renewals", ["71900002"])]
    assert api.get("/crm/v3/pipelines/deals/renewals").json()["label"] == "Renewals"
    with pytest.raises(SandboxAdminError, match="pipelines must be default or two"):
        sb.update_config(pipelines="three")
