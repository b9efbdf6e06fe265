"""Fixtures for the sandbox's tests: the session's sandbox (`sandbox` of tests/conftest.py),
reset around every test."""

from __future__ import annotations

import pytest

from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .helpers import Api


@pytest.fixture
def sb(sandbox: SandboxServer) -> SandboxServer:
    """The session's sandbox, in its initial state (data, config, tokens, faults, log)."""
    return sandbox


@pytest.fixture
def api(sb: SandboxServer) -> Api:
    return Api(sb.url, sb.issue_tokens()["access_token"])
