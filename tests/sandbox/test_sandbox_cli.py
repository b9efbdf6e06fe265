"""The command line and the subprocess mode benchmarks use; the sandbox stays standalone."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
import requests

from hubspot_ledger_tools.sandbox.cli import add_arguments, config_from
from hubspot_ledger_tools.sandbox.testing import SandboxServer


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.unit
def test_flags_and_defaults() -> None:
    args = parse()
    assert (args.host, args.port, args.seed, args.scale) == ("127.0.0.1", 8765, 1, "small")
    config = config_from(args)
    assert (config.access_token_ttl, config.rate_limit, config.rate_window,
            config.search_rate) == (1800, 110, 10.0, 5)
    assert config.scopes == ["oauth", "crm.objects.deals.read", "crm.objects.companies.read",
                             "crm.objects.line_items.read", "crm.objects.products.read",
                             "crm.objects.invoices.read"]
    config = config_from(parse("--scale", "250", "--redirect-uri", "http://a/cb",
                               "--redirect-uri", "http://b/cb", "--scopes", "oauth x.read",
                               "--client-id", "cid", "--client-secret", "sec",
                               "--portal-id", "77", "--rate-limit", "9"))
    assert config.scale == "250" and config.redirect_uris == ["http://a/cb", "http://b/cb"]
    assert config.scopes == ["oauth", "x.read"] and config.portal_id == 77
    with pytest.raises(SystemExit):
        parse("--scale", "enormous")


@pytest.mark.unit
def test_the_sandbox_imports_nothing_else_of_the_project() -> None:
    code = ("import sys, hubspot_ledger_tools.sandbox.cli, hubspot_ledger_tools.sandbox.app, "
            "hubspot_ledger_tools.sandbox.testing; print(sorted(m for m in sys.modules "
            "if m.startswith('hubspot_ledger') "
            "and not m.startswith('hubspot_ledger_tools.sandbox')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    # The packages themselves (the product's only for its package data), nothing else.
    assert out.strip() == "['hubspot_ledger', 'hubspot_ledger_tools']"


@pytest.mark.integration
def test_process_mode() -> None:
    with SandboxServer(seed=3, scale="tiny", mode="process", rate_limit=50,
                       redirect_uri="http://localhost:5000/cb", client_id="bench-app",
                       association_page_size=7) as sb:
        assert sb.client_id == "bench-app" and sb.redirect_uri == "http://localhost:5000/cb"
        assert sb.config()["association_page_size"] == 7
        tokens = sb.connect()
        response = requests.get(f"{sb.url}/crm/v3/objects/deals", timeout=10,
                                headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert response.status_code == 200
        assert response.headers["X-HubSpot-RateLimit-Max"] == "50"
        url = sb.url
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/_sandbox/health", timeout=2)
