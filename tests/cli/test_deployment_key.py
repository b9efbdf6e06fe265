"""Where a deployment supplies the key (issue 15.5): with AIRFLOW_HOME outside the checkout, the
CLI never writes a key there; a verb that needs one fails with the one command that fixes it,
and that command does fix it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from hubspot_ledger.config import GENERATE_KEY_COMMAND, KEY_ENVS, PROJECT_ROOT, is_checkout_home
from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .conftest import hubspot_connection

CLI = PROJECT_ROOT / ".venv" / "bin" / "hubspot-ledger"


@pytest.mark.unit
def test_only_a_home_inside_the_checkout_is_the_checkouts(tmp_path: Path) -> None:
    assert is_checkout_home(PROJECT_ROOT / ".airflow")
    assert not is_checkout_home(tmp_path / "airflow")


@pytest.mark.integration
def test_a_deployments_home_without_a_key_names_the_command_that_supplies_it(
    books: Callable[..., int], ledger_db: str, sandbox: SandboxServer, tmp_path: Path
) -> None:
    integration = books("Acme Corp", configured=True)
    home = tmp_path / "deployment-home"
    env = {k: v for k, v in os.environ.items() if k not in KEY_ENVS}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW_CONN_LEDGER_DEFAULT=ledger_db,
               AIRFLOW_CONN_HUBSPOT_DEFAULT=hubspot_connection(sandbox))

    refused = subprocess.run([str(CLI), "auth-url", "--integration", str(integration)],
                             cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                             timeout=180)

    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"hubspot-ledger: No encryption key for the HubSpot tokens: the Airflow deployment at "
        f"{home} (AIRFLOW_HOME) must supply one, the same to every Airflow component and this "
        f"CLI: {GENERATE_KEY_COMMAND}"]
    assert not (home / "airflow.cfg").exists()  # the CLI writes no key into a deployment

    fixed = subprocess.run(
        ["bash", "-euc", f"{GENERATE_KEY_COMMAND}\n{CLI} auth-url --integration {integration}"],
        cwd=PROJECT_ROOT, env={**env, "PATH": f"{CLI.parent}:{env['PATH']}"},
        capture_output=True, text=True, timeout=180)
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.startswith(f"{sandbox.url}/oauth/authorize?")
