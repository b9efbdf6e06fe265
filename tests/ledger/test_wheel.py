"""The product as a wheel (issue 11): what runs in production and only that, with its
migrations and mapping data as package data, so an installed wheel can `hubspot-ledger migrate`.

The wheel is built from this checkout and unpacked into a folder that is put first on the path
of a fresh interpreter started outside the checkout: the product it runs is the wheel's, not the
editable install's, while its dependencies come from the project's virtualenv (installing
Airflow into a new virtualenv would take minutes and the network).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from hubspot_ledger.config import PROJECT_ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Built the way `make setup` builds the editable install (an isolated build backend).
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(out), str(PROJECT_ROOT)],
                   check=True, capture_output=True, timeout=300)
    [built] = out.glob("hubspot_ledger-*.whl")
    return built


@pytest.fixture
def empty_database(ledger_db: str) -> Iterator[str]:
    name = f"wheel_{uuid.uuid4().hex[:8]}"
    admin = ledger_db.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield ledger_db.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


def test_the_wheel_holds_the_product_and_its_data_but_no_tools(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("hubspot_ledger/data/migrations/0001_") for n in names)
    assert "hubspot_ledger/data/mappings/currencies.yaml" in names
    assert "hubspot_ledger/load/writer.py" in names
    tools = [n for n in names if n.startswith("hubspot_ledger_tools")
             or any(f"/{t}" in n for t in ("sandbox/", "bench/", "fault_matrix", "demo.py"))]
    assert tools == []


def test_an_installed_wheel_migrates_an_empty_database(wheel: Path, empty_database: str,
                                                       tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "AIRFLOW_CONN_LEDGER_DEFAULT": empty_database}
    code = ("import hubspot_ledger, sys; from hubspot_ledger.cli import main; "
            "print(hubspot_ledger.__file__, file=sys.stderr); sys.exit(main(['migrate']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.splitlines()[0].startswith(str(site))  # the wheel's code ran
    with psycopg.connect(empty_database) as conn:
        applied = conn.execute("SELECT count(*) FROM ledger.schema_migrations").fetchone()
    migrations = [n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".sql")]
    assert applied is not None and applied[0] == len(migrations)
