"""The README's CLI walk-through, verbatim, on a fresh clone (issue 15.5 and 15.6).

The commands are read from README.md's fenced block under "3. Through the CLI", so the README
and this test cannot drift. They run in a fresh clone of this checkout (its committed files,
plus any uncommitted changes of the working tree, without ignored state: no `.airflow/`), from
the clone's root, with only the two connections set, as the README says: no AIRFLOW_HOME, no key.

What is reused instead of `make setup`: `make setup` only creates `.venv` and installs the
pinned packages and the project (editable) into it, which takes a minute. The test runs the
clone with the virtualenv running this test instead (its `bin/` first on PATH, for
`hubspot-ledger` and `airflow`) and the clone's `plugins/` and `tools/` first on PYTHONPATH, so
the code, the DAGs and the Airflow home are the clone's own. The HubSpot sandbox stands in for
HubSpot; the one step a person does by hand ("open it, approve; copy `code` from the
redirect") is done by following the consent URL, which the sandbox approves.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import psycopg
import pytest
import requests

from hubspot_ledger.config import PROJECT_ROOT
from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .conftest import hubspot_connection

pytestmark = [pytest.mark.e2e, pytest.mark.deployment, pytest.mark.timeout(900)]
HEADING = "### 3. Through the CLI"
KEY_SAID = "a new Fernet key, which encrypts the HubSpot tokens, is kept in"


def walkthrough_commands(readme: str) -> list[str]:
    """The README's walk-through: the first bash block after its heading, one command per
    logical line (backslash continuations joined)."""
    after = readme[readme.index(HEADING):]
    block = re.search(r"```bash\n(.*?)```", after, re.S)
    assert block is not None, "no bash block under the walk-through's heading"
    return [c.strip() for c in block.group(1).replace("\\\n", " ").splitlines() if c.strip()]


def fresh_clone(target: Path) -> Path:
    """A clone of this checkout, with the working tree's uncommitted changes laid over it."""
    subprocess.run(["git", "clone", "--quiet", str(PROJECT_ROOT), str(target)], check=True)
    listed = subprocess.run(["git", "ls-files", "--modified", "--others", "--exclude-standard",
                             "-z"], cwd=PROJECT_ROOT, check=True, capture_output=True,
                            text=True).stdout
    for name in filter(None, listed.split("\0")):
        source = PROJECT_ROOT / name
        if source.is_file() and not source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
        elif not source.exists():
            (target / name).unlink(missing_ok=True)
    return target


def operator_env(clone: Path, ledger_uri: str, sb: SandboxServer) -> dict[str, str]:
    """A shell with the set-up's tools on PATH and the two connections: nothing else of ours."""
    keep = {k: v for k, v in os.environ.items()
            if k in ("HOME", "LANG", "LC_ALL", "TZ", "USER", "TMPDIR")}
    return {**keep,
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PYTHONPATH": f"{clone / 'plugins'}:{clone / 'tools'}",
            "AIRFLOW_CONN_LEDGER_DEFAULT": ledger_uri,
            "AIRFLOW_CONN_HUBSPOT_DEFAULT": hubspot_connection(sb)}


def approve(consent_url: str) -> tuple[str, str]:
    """What the person does: open the consent URL, approve, read code and state back."""
    redirect = requests.get(consent_url, allow_redirects=False, timeout=30)
    query = parse_qs(urlparse(redirect.headers["Location"]).query)
    return query["code"][0], query["state"][0]


def test_the_readme_cli_walkthrough_works_on_a_fresh_clone(
    tmp_path: Path, fresh_ledger_uri: str, sandbox: SandboxServer
) -> None:
    clone = fresh_clone(tmp_path / "clone")
    commands = walkthrough_commands((clone / "README.md").read_text())
    env = operator_env(clone, fresh_ledger_uri, sandbox)
    stderr: list[str] = []
    outputs: dict[str, str] = {}
    for command in commands:
        if "<code>" in command:  # the hand step: the code and state the consent gave back
            code, state = approve(outputs["auth-url"].strip())
            command = command.replace("[--state <state>]", f"--state {state}")
            command = command.replace("<code>", code)
        assignment = re.match(r"(\w+)=\$\(", command)
        script = f"{command}\nprintf '%s' \"${assignment.group(1)}\"" if assignment else command
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=clone, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        stderr.append(result.stderr)
        if assignment:
            env[assignment.group(1)] = result.stdout.splitlines()[-1]
        verb = command.split()[1] if command.startswith("hubspot-ledger ") else command
        outputs[verb] = result.stdout

    # The CLI prepared the clone's Airflow home on first use, and said so once.
    assert sum(text.count(KEY_SAID) for text in stderr) == 1, stderr
    cfg = (clone / ".airflow" / "airflow.cfg").read_text()
    assert re.search(r"^fernet_key = \S+", cfg, re.M)
    # The books the walk-through created were used, the sync ran and the ledger has its work.
    assert outputs["sync"].splitlines()[-1].endswith(": success"), outputs["sync"]
    integration = env["ID"]
    with psycopg.connect(fresh_ledger_uri) as conn:
        contracts = conn.execute(
            "SELECT count(*) FROM ledger.contracts c JOIN ledger.integration_records r "
            "ON r.local_id = c.id AND r.remote_type = 'deal' WHERE r.integration_id = %s",
            [int(integration)]).fetchone()
        status = conn.execute("SELECT status FROM ledger.integrations WHERE id = %s",
                              [int(integration)]).fetchone()
    assert status == ("connected",)
    assert contracts is not None and contracts[0] > 0

    # The home carries the project's settings: Airflow alone, given only AIRFLOW_HOME (and the
    # ledger, where the DAG factory reads the integrations), parses the project's DAGs.
    listed = subprocess.run(
        ["airflow", "dags", "list", "--local", "--output", "plain"], cwd=tmp_path,
        env={**{k: env[k] for k in ("PATH", "PYTHONPATH", "HOME", "AIRFLOW_CONN_LEDGER_DEFAULT")
                if k in env}, "AIRFLOW_HOME": str(clone / ".airflow")},
        capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr
    dags = [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]
    assert f"hubspot_sync__integration_{integration}" in dags, listed.stdout
    assert not [d for d in dags if d.startswith("example_")]
