"""`hubspot-ledger sandbox` / `python -m hubspot_ledger_tools.sandbox`: serve the sandbox."""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time

from hubspot_ledger_tools.sandbox.config import DEFAULT_SCOPES, SandboxConfig, parse_scale

LATENCY_ENV = "HUBSPOT_SANDBOX_LATENCY"


def _scale(value: str) -> str:
    try:
        parse_scale(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = SandboxConfig()
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    add("--port", type=int, default=8765, help="port (default 8765; 0 = any free port)")
    add("--seed", type=int, default=defaults.seed, help="data generator seed (default 1)")
    add("--scale", type=_scale, default=defaults.scale,
        help="tiny|small|medium|large or a number of deals (default small)")
    add("--portal-id", type=int, default=defaults.portal_id, help="the default portal's id")
    add("--currency", default=defaults.currency, help="the portal's company currency")
    add("--ui-domain", default=defaults.ui_domain, help="the portal's uiDomain")
    add("--client-id", default=defaults.client_id, help="the OAuth app's client id")
    add("--client-secret", default=defaults.client_secret, help="the OAuth app's secret")
    add("--redirect-uri", action="append", dest="redirect_uris", metavar="URI",
        help=f"a registered redirect URI (repeatable; default {defaults.redirect_uris[0]})")
    add("--scopes", default=" ".join(DEFAULT_SCOPES),
        help="the app's required scopes, space separated")
    add("--optional-scopes", default="", help="the app's optional scopes, space separated")
    add("--access-token-ttl", type=int, default=defaults.access_token_ttl,
        help="access token lifetime in seconds (default 1800)")
    add("--code-ttl", type=int, default=defaults.code_ttl,
        help="authorization code lifetime in seconds (default 300)")
    add("--rate-limit", type=int, default=defaults.rate_limit,
        help="API calls per window per portal (default 110)")
    add("--rate-window", type=float, default=defaults.rate_window,
        help="rate limit window in seconds (default 10)")
    add("--search-rate", type=int, default=defaults.search_rate,
        help="search calls per second per portal (default 5)")
    add("--search-lag", type=float, default=defaults.search_lag,
        help="seconds a modified record stays invisible to search (default 0)")
    add("--search-cap", type=int, default=defaults.search_cap,
        help="results a search can page through (default 10000, HubSpot's)")
    add("--consent", choices=("approve", "deny"), default=defaults.consent,
        help="what the simulated user answers on the consent page")
    add("--latency", action=argparse.BooleanOptionalAction,
        default=os.environ.get(LATENCY_ENV, "").lower() in ("1", "true", "on", "yes"),
        help=f"answer with HubSpot-like response times (latency.py; default off, or "
             f"{LATENCY_ENV}=1)")
    add("--latency-seed", type=int, default=None,
        help="seed of the response times (default: --seed)")
    add("--log-level", default="warning", help="uvicorn log level (default warning)")
    add("--webhook-url", default=defaults.webhook_url,
        help="where the app's webhooks go: HubSpot's calls for every change made through the "
             "admin API, signed with the client secret (default: none sent)")
    add("--beyond", action="store_true",
        help="issue 14's data: renewals-pipeline deals, billing start dates on recurring lines")


def config_from(args: argparse.Namespace) -> SandboxConfig:
    defaults = SandboxConfig()
    return SandboxConfig(
        seed=args.seed, scale=str(args.scale), portal_id=args.portal_id, currency=args.currency,
        ui_domain=args.ui_domain, client_id=args.client_id, client_secret=args.client_secret,
        redirect_uris=args.redirect_uris or defaults.redirect_uris,
        scopes=args.scopes.split(), optional_scopes=args.optional_scopes.split(),
        access_token_ttl=args.access_token_ttl, code_ttl=args.code_ttl,
        rate_limit=args.rate_limit, rate_window=args.rate_window, search_rate=args.search_rate,
        search_lag=args.search_lag, search_cap=args.search_cap, consent=args.consent,
        latency=args.latency, latency_seed=args.latency_seed, beyond=args.beyond,
        webhook_url=args.webhook_url)


def run(args: argparse.Namespace) -> None:
    import socket

    import uvicorn

    from hubspot_ledger_tools.sandbox.app import create_app
    from hubspot_ledger_tools.sandbox.state import Sandbox

    config = config_from(args)
    started = time.monotonic()
    sandbox = Sandbox(config)
    # The generated portal lives as long as the process: keep the collector off it.
    gc.freeze()
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    port = sock.getsockname()[1]
    counts = sandbox.portal(None).describe()["counts"]  # type: ignore[union-attr]
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"HubSpot sandbox at http://{host}:{port}  (seed {config.seed}, scale {config.scale},"
          f" generated in {time.monotonic() - started:.1f}s)", flush=True)
    print(f"  portal_id     {config.portal_id}  "
          + ", ".join(f"{n} {c}" for n, c in counts.items()), flush=True)
    print(f"  client_id     {config.client_id}", flush=True)
    print(f"  client_secret {config.client_secret}  (a sandbox fake)", flush=True)
    print(f"  redirect_uri  {' '.join(config.redirect_uris)}", flush=True)
    print(f"  scopes        {' '.join(config.scopes)}", flush=True)
    print(f"  consent URL   http://{host}:{port}/oauth/authorize  admin API "
          f"http://{host}:{port}/_sandbox/info", flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(sandbox), log_level=args.log_level,
                                           access_log=False, lifespan="off"))
    server.run(sockets=[sock])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hubspot_ledger_tools.sandbox",
                                     description="Serve the HubSpot sandbox.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run(args)
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"hubspot sandbox: {exc}", file=sys.stderr)
        return 1
    return 0
