"""The API's bodies follow the service's settings (one list of account settings)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hubspot_ledger.api.schemas import Settings, SettingsUpdate
from hubspot_ledger.config import PROJECT_ROOT
from hubspot_ledger.integration_settings import ACCOUNTS

PLUGIN = PROJECT_ROOT / "plugins" / "hubspot_ledger_plugin.py"

pytestmark = pytest.mark.unit


def test_the_api_names_every_account_setting_the_service_knows() -> None:
    fields = {a.field for a in ACCOUNTS}
    assert fields <= set(SettingsUpdate.model_fields)
    assert fields <= set(Settings.model_fields)


def test_loading_the_plugin_builds_no_app() -> None:
    """Every Airflow process that loads plugins imports the plugin module (scheduler, DAG
    processor, task runners); only the api-server serves the app, so loading stays cheap."""
    probe = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('hubspot_ledger_plugin', {str(PLUGIN)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "prefixes = [e['url_prefix'] for e in module.HubSpotLedgerPlugin.fastapi_apps]\n"
        "print(*prefixes, 'hubspot_ledger.api.app' in sys.modules,"
        " 'hubspot_ledger.ui.app' in sys.modules,"
        " 'airflow.api_fastapi.core_api.security' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["/api/integrations/hubspot", "/hubspot-ledger", "False",
                                     "False", "False"]
