-- Issue 14, webhook-driven syncs: what HubSpot's webhooks said about an integration's portal
-- since a run last took it. A burst of events asks Airflow for one run (one asset event), not
-- one per event: the first event of a burst records `signalled_at`, the ones after it only add
-- to the pending count, and the run that takes them (its first sync task) clears both; an
-- event arriving after that asks again, so nothing a running run may have missed is left
-- waiting for the schedule (README, "Webhooks").
CREATE TABLE ledger.webhook_signals (
    integration_id    bigint PRIMARY KEY
                      REFERENCES ledger.integrations (id) ON DELETE CASCADE,
    pending_events    integer NOT NULL DEFAULT 0 CHECK (pending_events >= 0),
    first_pending_at  timestamptz,
    last_event_at     timestamptz,
    -- deals the pending events named: the run reads them by id too (HubSpot's search index
    -- may not show a change made seconds ago)
    pending_deals     text[] NOT NULL DEFAULT '{}',
    -- the asset event that asked Airflow for a run of the pending events (NULL: none yet)
    signalled_at      timestamptz,
    signal_token      text,
    events_received   bigint NOT NULL DEFAULT 0 CHECK (events_received >= 0),
    taken_at          timestamptz,
    taken_by          text,
    CONSTRAINT webhook_signals_pending CHECK ((pending_events = 0) = (first_pending_at IS NULL)),
    CONSTRAINT webhook_signals_signal CHECK ((signalled_at IS NULL) = (signal_token IS NULL))
);

-- Each webhook call looks up the integrations of the portal it names.
CREATE INDEX integrations_remote_id ON ledger.integrations (remote_id)
    WHERE remote_id IS NOT NULL;
