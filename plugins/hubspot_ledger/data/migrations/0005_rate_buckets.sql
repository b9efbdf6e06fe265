-- One HubSpot request budget per portal and kind (issue 5), shared by every task and every
-- concurrent run that calls that portal: HubSpot counts per installing portal and app.
--
-- A token bucket kept by one atomic UPSERT per request (hubspot_ledger.ratelimit). `tokens` may
-- go negative: that is the queue of reservations already handed out, so callers wait their turn
-- in order instead of polling. Time is the database's clock, the one clock every worker shares.
CREATE TABLE ledger.hubspot_rate_buckets (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    portal_id   text NOT NULL,
    bucket      text NOT NULL CHECK (bucket IN ('general', 'search')),
    tokens      numeric NOT NULL,
    updated_at  timestamptz NOT NULL,
    CONSTRAINT hubspot_rate_buckets_key UNIQUE (portal_id, bucket)
);
