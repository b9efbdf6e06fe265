-- Sync staging (issue 4): what one step of a run hands to a later step of the same run.
--
-- sync_companies finds the qualifying deals (closed won, on/after the cutoff) because companies
-- are reached only through them; it stages each deal with its primary company so that
-- sync_deals reads neither the search nor the companies again. Staged rows live as long as
-- their run: the report task clears them, and deleting a run cascades. A retried step rewrites
-- its own rows (the unique key makes staging idempotent).
CREATE TABLE ledger.sync_staging (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sync_run_id  bigint NOT NULL REFERENCES ledger.sync_runs (id) ON DELETE CASCADE,
    remote_type  text NOT NULL
                 CHECK (remote_type IN ('product', 'company', 'deal', 'line_item', 'invoice')),
    remote_id    text NOT NULL,
    payload      jsonb NOT NULL,
    CONSTRAINT sync_staging_key UNIQUE (sync_run_id, remote_type, remote_id)
);
