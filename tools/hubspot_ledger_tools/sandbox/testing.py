"""The sandbox for tests and benchmarks: `SandboxServer` runs one, `SandboxAdmin` drives it.

    with SandboxServer(seed=1, scale="tiny", rate_limit=20) as sb:
        tokens = sb.connect()                 # consent redirect + code exchange
        requests.get(f"{sb.url}/crm/v3/objects/deals",
                     headers={"Authorization": f"Bearer {tokens['access_token']}"})
        sb.requests(endpoint="GET /crm/v3/objects/deals")

`mode="thread"` (default) serves from a background thread of this process (starts in a few
hundred milliseconds for small scales); `mode="process"` runs
`python -m hubspot_ledger_tools.sandbox` in a subprocess, so that a benchmark measures the
client alone.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import requests

from hubspot_ledger_tools.sandbox.config import SandboxConfig

TIMEOUT = 30.0


class SandboxAdminError(RuntimeError):
    """The admin API refused a call (or the sandbox did not behave as the helper expected)."""


class SandboxAdmin:
    """A client of a running sandbox's admin API (`/_sandbox/…`) plus OAuth helpers."""

    def __init__(self, url: str | None = None) -> None:
        self.url = (url or "").rstrip("/")
        self.session = requests.Session()
        self._info: dict[str, Any] = {}

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, json: Any = None,
              params: Mapping[str, Any] | None = None) -> Any:
        response = self.session.request(method, f"{self.url}/_sandbox{path}", json=json,
                                        params=params, timeout=TIMEOUT)
        if response.status_code >= 400:
            raise SandboxAdminError(f"{method} /_sandbox{path}: {response.status_code} "
                                    f"{response.text}")
        return response.json() if response.content else None

    def _portal(self, portal_id: int | None) -> str:
        return "default" if portal_id is None else str(portal_id)

    def refresh_info(self) -> dict[str, Any]:
        self._info = self._call("GET", "/info")
        return self._info

    @property
    def client_id(self) -> str:
        return str(self._info["client_id"])

    @property
    def client_secret(self) -> str:
        return str(self._info["client_secret"])

    @property
    def redirect_uris(self) -> list[str]:
        return list(self._info["redirect_uris"])

    @property
    def redirect_uri(self) -> str:
        return self.redirect_uris[0]

    @property
    def scopes(self) -> list[str]:
        return list(self._info["scopes"])

    @property
    def portal_id(self) -> int:
        return int(self._info["portal_id"])

    # -- state --------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        return self.refresh_info()

    def config(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/config")
        return result

    def update_config(self, **changes: Any) -> dict[str, Any]:
        """Change run-time settings, e.g. `rate_limit=5, rate_window=1, search_lag=2`."""
        result: dict[str, Any] = self._call("PATCH", "/config", json=changes)
        self.refresh_info()
        return result

    def reset(self, seed: int | None = None, scale: str | int | None = None) -> dict[str, Any]:
        """Regenerate from the seed; drop added portals, tokens, faults, the log, config
        changes."""
        body = {k: v for k, v in {"seed": seed, "scale": scale}.items() if v is not None}
        self._info = self._call("POST", "/reset", json=body)
        return self._info

    # -- webhooks -----------------------------------------------------------------------------

    def subscribe(self, url: str, subscriptions: Sequence[str] | None = None,
                  **settings: Any) -> dict[str, Any]:
        """Send the app's webhooks to `url` (its target URL); `subscriptions` replace the
        default ones; `settings`: webhook_batch_size, webhook_batch_delay, webhook_retries."""
        changes: dict[str, Any] = {"webhook_url": url, **settings}
        if subscriptions is not None:
            changes["webhook_subscriptions"] = list(subscriptions)
        return self.update_config(**changes)

    def webhooks(self) -> dict[str, Any]:
        """The target URL, subscriptions, and the calls sent with their answers."""
        result: dict[str, Any] = self._call("GET", "/webhooks")
        return result

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        return list(self.webhooks()["deliveries"])

    # -- request log ------------------------------------------------------------------------

    def requests(self, since: int = 0, endpoint: str | None = None,
                 portal_id: int | None = None, object_type: str | None = None,
                 limit: int | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"since": since, "endpoint": endpoint,
                                    "portal_id": portal_id, "object_type": object_type,
                                    "limit": limit}.items() if v is not None}
        result: list[dict[str, Any]] = self._call("GET", "/requests", params=params)["results"]
        return result

    def last_seq(self) -> int:
        return int(self._call("GET", "/requests", params={"limit": 1})["last_seq"])

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    # -- faults -------------------------------------------------------------------------------

    def faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/faults")["results"]
        return result

    def set_faults(self, rules: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Replace every fault rule (see `faults.FaultRule` for the fields)."""
        result: list[dict[str, Any]] = self._call("PUT", "/faults",
                                                  json={"rules": list(rules)})["results"]
        return result

    def add_fault(self, **rule: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/faults", json={"rules": [rule]})[
            "results"][0]
        return result

    def remove_fault(self, rule_id: str) -> None:
        self._call("DELETE", f"/faults/{rule_id}")

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    # -- portals and records --------------------------------------------------------------

    def portals(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/portals")["results"]
        return result

    def add_portal(self, portal_id: int | None = None, seed: int = 1, scale: str | int = "tiny",
                   currency: str = "USD", ui_domain: str = "app.hubspot.com",
                   **settings: Any) -> dict[str, Any]:
        """A further portal (its own id, data, currency, uiDomain, rate limits)."""
        body = {"seed": seed, "scale": str(scale), "currency": currency,
                "ui_domain": ui_domain, **settings}
        if portal_id is not None:
            body["portal_id"] = portal_id
        result: dict[str, Any] = self._call("POST", "/portals", json=body)
        return result

    def record(self, object_type: str, id: int | str, portal_id: int | None = None
               ) -> dict[str, Any]:
        """Every property and association of one record."""
        result: dict[str, Any] = self._call(
            "GET", f"/portals/{self._portal(portal_id)}/objects/{object_type}/{id}")
        return result

    def upsert(self, object_type: str, properties: Mapping[str, Any],
               id: int | str | None = None,
               associations: Mapping[str, Sequence[Any]] | None = None,
               portal_id: int | None = None) -> dict[str, Any]:
        """Create (no id, or an unknown one) or update a record; its modified date is now.

        associations: `{"companies": [{"id": 1, "primary": True}, 2], "line_items": [3]}`;
        each listed type's associations are replaced.
        """
        body: dict[str, Any] = {"properties": dict(properties)}
        if id is not None:
            body["id"] = str(id)
        if associations is not None:
            body["associations"] = {k: list(v) for k, v in associations.items()}
        result: dict[str, Any] = self._call(
            "POST", f"/portals/{self._portal(portal_id)}/objects/{object_type}", json=body)
        return result

    def archive(self, object_type: str, id: int | str, archived: bool = True,
                portal_id: int | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", f"/portals/{self._portal(portal_id)}/objects/{object_type}/{id}/archive",
            json={"archived": archived})
        return result

    def delete(self, object_type: str, id: int | str, portal_id: int | None = None) -> None:
        self._call("DELETE", f"/portals/{self._portal(portal_id)}/objects/{object_type}/{id}")

    # -- tokens ---------------------------------------------------------------------------------

    def issue_tokens(self, portal_id: int | None = None,
                     scopes: Sequence[str] | None = None) -> dict[str, Any]:
        """Tokens without the consent dance; the token endpoint's body."""
        body: dict[str, Any] = {"portal_id": portal_id}
        if scopes is not None:
            body["scopes"] = list(scopes)
        result: dict[str, Any] = self._call("POST", "/tokens", json=body)
        return result

    def revoke_refresh_tokens(self, portal_id: int | None = None,
                              refresh_token: str | None = None,
                              access_tokens: bool = False) -> int:
        """Revoke refresh tokens (one, a portal's, or all); `access_tokens` also kills the
        access tokens, as uninstalling the app does."""
        return int(self._call("POST", "/tokens/revoke", json={
            "portal_id": portal_id, "refresh_token": refresh_token,
            "access_tokens": access_tokens})["revoked"])

    def expire_access_tokens(self, portal_id: int | None = None,
                             access_token: str | None = None) -> int:
        return int(self._call("POST", "/tokens/expire", json={
            "portal_id": portal_id, "access_token": access_token})["expired"])

    # -- OAuth helpers --------------------------------------------------------------------------

    def authorize_url(self, scopes: Sequence[str] | None = None, state: str | None = None,
                      portal_id: int | None = None, redirect_uri: str | None = None,
                      optional_scopes: Sequence[str] | None = None,
                      client_id: str | None = None, decision: str | None = None) -> str:
        params = {"client_id": client_id or self.client_id,
                  "redirect_uri": redirect_uri or self.redirect_uri,
                  "scope": " ".join(self.scopes if scopes is None else scopes)}
        if optional_scopes:
            params["optional_scope"] = " ".join(optional_scopes)
        if state is not None:
            params["state"] = state
        if portal_id is not None:
            params["portal_id"] = str(portal_id)
        if decision is not None:
            params["sandbox_decision"] = decision
        return f"{self.url}/oauth/authorize?{urlencode(params)}"

    def authorize(self, scopes: Sequence[str] | None = None, state: str | None = None,
                  portal_id: int | None = None, redirect_uri: str | None = None,
                  optional_scopes: Sequence[str] | None = None) -> str:
        """Go through the consent page and return the `code` it redirects back with."""
        url = self.authorize_url(scopes, state, portal_id, redirect_uri, optional_scopes)
        response = self.session.get(url, allow_redirects=False, timeout=TIMEOUT)
        location = response.headers.get("Location", "")
        query = parse_qs(urlparse(location).query)
        if response.status_code != 302 or "code" not in query:
            raise SandboxAdminError(f"consent did not redirect with a code: "
                                    f"{response.status_code} {location or response.text[:200]}")
        if state is not None and query.get("state") != [state]:
            raise SandboxAdminError("consent redirect lost the state")
        return query["code"][0]

    def exchange_code(self, code: str, redirect_uri: str | None = None,
                      version: str = "v3") -> dict[str, Any]:
        response = self.session.post(f"{self.url}/oauth/{version}/token", timeout=TIMEOUT, data={
            "grant_type": "authorization_code", "client_id": self.client_id,
            "client_secret": self.client_secret, "code": code,
            "redirect_uri": redirect_uri or self.redirect_uri})
        if response.status_code != 200:
            raise SandboxAdminError(f"code exchange failed: {response.status_code} "
                                    f"{response.text}")
        result: dict[str, Any] = response.json()
        return result

    def connect(self, portal_id: int | None = None,
                scopes: Sequence[str] | None = None) -> dict[str, Any]:
        """The whole authorization-code flow; the token endpoint's body."""
        return self.exchange_code(self.authorize(scopes=scopes, portal_id=portal_id))


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class SandboxServer(SandboxAdmin):
    """A running sandbox (context manager). Extra keyword arguments are `SandboxConfig`
    fields, e.g. `rate_limit=10, rate_window=1, access_token_ttl=2, search_cap=500`; a single
    `redirect_uri=` is accepted too."""

    def __init__(self, seed: int = 1, scale: str | int = "tiny", *, mode: str = "thread",
                 host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 120.0,
                 **config: Any) -> None:
        super().__init__()
        if mode not in ("thread", "process"):
            raise ValueError("mode must be thread or process")
        if "redirect_uri" in config:
            config["redirect_uris"] = [config.pop("redirect_uri")]
        if isinstance(config.get("scopes"), str):
            config["scopes"] = config["scopes"].split()
        fields = {f.name for f in dataclasses.fields(SandboxConfig)}
        unknown = set(config) - fields
        if unknown:
            raise TypeError(f"unknown sandbox settings: {', '.join(sorted(unknown))}")
        self.settings = SandboxConfig(seed=seed, scale=str(scale), **config)
        self.mode = mode
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.sandbox: Any = None  # the in-process state (thread mode), for white-box tests
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> SandboxServer:
        if self.mode == "thread":
            self._start_thread()
        else:
            self._start_process()
        self.refresh_info()
        return self

    def _start_thread(self) -> None:
        import uvicorn

        from hubspot_ledger_tools.sandbox.app import create_app
        from hubspot_ledger_tools.sandbox.state import Sandbox

        self.sandbox = Sandbox(self.settings)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(
            create_app(self.sandbox), log_level="warning", access_log=False, lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"hubspot-sandbox-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise SandboxAdminError("the sandbox server did not start")
            time.sleep(0.005)
        self.url = f"http://{self.host}:{self.port}"

    def _command(self) -> list[str]:
        s = self.settings
        command = [sys.executable, "-m", "hubspot_ledger_tools.sandbox", "--host", self.host,
                   "--port", str(self.port or 0), "--seed", str(s.seed), "--scale", s.scale,
                   "--portal-id", str(s.portal_id), "--currency", s.currency,
                   "--ui-domain", s.ui_domain, "--client-id", s.client_id,
                   "--client-secret", s.client_secret, "--scopes", " ".join(s.scopes),
                   "--optional-scopes", " ".join(s.optional_scopes),
                   "--access-token-ttl", str(s.access_token_ttl), "--code-ttl", str(s.code_ttl),
                   "--rate-limit", str(s.rate_limit), "--rate-window", str(s.rate_window),
                   "--search-rate", str(s.search_rate), "--search-lag", str(s.search_lag),
                   "--search-cap", str(s.search_cap), "--consent", s.consent]
        if s.latency:
            command += ["--latency", "--latency-seed", str(s.effective_latency_seed())]
        for uri in s.redirect_uris:
            command += ["--redirect-uri", uri]
        if s.beyond:
            command.append("--beyond")
        if s.webhook_url:
            command += ["--webhook-url", s.webhook_url]
        return command

    def _start_process(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._process = subprocess.Popen(  # noqa: S603 - our own module, no shell
            self._command(), stdout=subprocess.PIPE, text=True, env=env)
        lines: queue.Queue[str] = queue.Queue()
        stdout = self._process.stdout
        assert stdout is not None
        def pump() -> None:  # keeps the pipe drained; the first line says where it listens
            for line in stdout:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        try:
            first = lines.get(timeout=self.startup_timeout)
        except queue.Empty:
            self.stop()
            raise SandboxAdminError("the sandbox process did not start in time") from None
        if "http://" not in first:
            self.stop()
            raise SandboxAdminError(f"the sandbox process did not start: {first!r}")
        self.url = "http://" + first.split("http://", 1)[1].split()[0]
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                if self.session.get(f"{self.url}/_sandbox/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SandboxAdminError("the sandbox process did not answer")
            time.sleep(0.05)
        defaults = SandboxConfig()
        extra = {k: getattr(self.settings, k) for k in ("association_page_size",
                                                        "request_log_size")
                 if getattr(self.settings, k) != getattr(defaults, k)}
        if extra:
            self._call("PATCH", "/config", json=extra)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = self._thread = None
            self.sandbox.webhooks.stop()
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None
        self.session.close()
