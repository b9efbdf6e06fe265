"""HubSpot's webhooks: what starts an integration's sync as soon as HubSpot says its data changed
(issue 14, "webhook-driven syncs").

- `signature`: HubSpot's v3 request signature (pure; the sandbox signs with it too).
- `events`: the body HubSpot posts, read into what the endpoint needs (pure).
- `asset`: the Airflow asset each integration's DAG is scheduled on beside its cron.
- `signals`: the burst rule — one asset event per integration until a run takes the events.

The endpoint is `hubspot_ledger.api.routes_webhooks`; the ledger side `store.webhooks`.
"""
