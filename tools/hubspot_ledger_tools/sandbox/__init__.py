"""The HubSpot sandbox: a standalone HTTP stand-in for HubSpot's OAuth, account and CRM APIs.

It speaks HubSpot's real paths, payloads, paging, limits, error bodies and rate-limit headers,
serves deterministic generated portals, and has an unauthenticated admin API under
`/_sandbox/` for tests (request log, fault injection, data changes, token tricks).
It is standalone on purpose: it never imports the rest of `hubspot_ledger`, and the sync code
never imports it — the two only meet over HTTP, as the sync code and HubSpot do.

Entry points: `python -m hubspot_ledger_tools.sandbox` / `hubspot-ledger sandbox` (see `cli`), and
`testing.SandboxServer` for tests and benchmarks.
"""
