-- Every path lands right (issue 10): voided documents, open problems, coverage per object type,
-- and what each run decided.

-- A draft whose HubSpot record no longer qualifies (left closed-won, archived or deleted, now
-- before the cutoff) becomes 'void', keeping its id, lines and mapping; if the record qualifies
-- again the same row returns to 'draft' (DESIGN "lost deals and invoices").
ALTER TABLE ledger.contracts DROP CONSTRAINT contracts_status_check;
ALTER TABLE ledger.contracts ADD CONSTRAINT contracts_status_check
    CHECK (status IN ('draft', 'active', 'completed', 'cancelled', 'void'));

-- Invoices get the contract's status column (DESIGN data contract): the sync writes 'draft'
-- and 'void'; anything else belongs to accountants and is never overwritten.
ALTER TABLE ledger.invoices ADD COLUMN status text NOT NULL DEFAULT 'draft'
    CONSTRAINT invoices_status_check
    CHECK (status IN ('draft', 'open', 'paid', 'cancelled', 'void'));

-- Open problems: resolved_at stays NULL while the record still fails, and is set when it
-- imports (or stops qualifying). A record that keeps failing keeps one open entry whose
-- last_seen_at moves. Warnings (an amount that differs from HubSpot's, a contract voided, an
-- item drafted from a line) are information, recorded as already settled.
ALTER TABLE ledger.integration_errors
    ADD COLUMN resolved_at timestamptz,
    ADD COLUMN last_seen_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN severity text NOT NULL DEFAULT 'error'
        CONSTRAINT integration_errors_severity_check CHECK (severity IN ('error', 'warning'));

-- Entries logged before this migration: the newest one per record stays open (the next run
-- retries the record and settles it); older duplicates and entries about no record are history.
UPDATE ledger.integration_errors e SET resolved_at = e.created_at
WHERE e.remote_id IS NULL OR EXISTS (
    SELECT 1 FROM ledger.integration_errors n
    WHERE n.integration_id = e.integration_id AND n.remote_type = e.remote_type
      AND n.remote_id = e.remote_id AND (n.created_at, n.id) > (e.created_at, e.id));

CREATE INDEX integration_errors_open ON ledger.integration_errors
    (integration_id, remote_type, remote_id) WHERE resolved_at IS NULL;

-- Coverage: per integration and object type, the last complete read and the settings it was
-- made under. An object type without a row, or whose row's cutoff differs from the current
-- cutoff, gets a full read; otherwise a run reads what HubSpot changed since `read_from` (less
-- an overlap). Turning invoice sync off drops the invoice row, so turning it on again reads
-- every invoice. Backfill windows never write here.
CREATE TABLE ledger.sync_coverage (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id  bigint NOT NULL REFERENCES ledger.integrations (id) ON DELETE CASCADE,
    remote_type     text NOT NULL CHECK (remote_type IN ('product', 'deal', 'invoice')),
    cutoff_date     date,
    read_from       timestamptz NOT NULL,
    sync_run_id     bigint REFERENCES ledger.sync_runs (id) ON DELETE SET NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sync_coverage_key UNIQUE (integration_id, remote_type)
);

-- What a run decided: whether its invoice step runs (the branch's decision, which the report
-- follows), and what each object type read ("full: …" / "incremental since …").
ALTER TABLE ledger.sync_runs
    ADD COLUMN sync_invoices boolean,
    ADD COLUMN reads jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(reads) = 'object');
