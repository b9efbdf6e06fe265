"""Fixtures for the sandbox's tests: one tiny sandbox per session, reset before every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .helpers import Api


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer(seed=1, scale="tiny") as server:
        yield server


@pytest.fixture
def sb(sandbox_server: SandboxServer) -> SandboxServer:
    """The session's sandbox, back to its initial state (data, config, tokens, faults, log)."""
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
def api(sb: SandboxServer) -> Api:
    return Api(sb.url, sb.issue_tokens()["access_token"])
