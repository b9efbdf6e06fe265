"""The fault matrix (issue 6): every fault of `hubspot_ledger_tools.fault_matrix.FAULTS`,
injected into a real sync of a small sandbox portal, ends — after Airflow-like retries — with
the ledger equal to a fault-free run: nothing duplicated, nothing lost. `make chaos` runs the
same at a larger scale."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet

from hubspot_ledger.crypto import KEYS_ENV
from hubspot_ledger_tools.fault_matrix import (
    FAULTS,
    Dump,
    Fault,
    canonical,
    new_integration,
    run_fault,
    sandbox_app,
    sync,
)
from hubspot_ledger_tools.sandbox.testing import SandboxServer

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def world(ledger_db: str) -> Iterator[tuple[SandboxServer, psycopg.Connection[Any], Dump, str]]:
    with pytest.MonkeyPatch.context() as mp, SandboxServer(seed=11, scale="tiny") as sb, \
            sandbox_app(sb), psycopg.connect(ledger_db, autocommit=True,
                                             application_name="chaos-observer") as conn:
        mp.setenv(KEYS_ENV, Fernet.generate_key().decode())
        mp.setenv("HUBSPOT_LEDGER_INCREMENTAL_OVERLAP_SECONDS", "0")
        reference_id = new_integration(sb, "Fault-free reference")
        ok, seen = sync(reference_id)
        assert ok, seen
        yield sb, conn, canonical(conn, reference_id), ledger_db.rsplit("/", 1)[1]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_after_the_fault_the_ledger_equals_a_fault_free_run(
        world: tuple[SandboxServer, psycopg.Connection[Any], Dump, str], fault: Fault) -> None:
    sb, conn, reference, database = world
    assert reference["contracts"], "the reference run wrote no contract"
    result = run_fault(fault, sb, conn, reference, database)
    assert result.succeeded, result.notes
    assert result.duplicates == 0
    assert result.lost == 0
    assert result.different == [], result.notes
