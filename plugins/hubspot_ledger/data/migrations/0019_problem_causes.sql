-- Issue 12 (no-change runs): what an open problem waits for. Every run used to read every
-- record with an open problem again by id; most of them (a deal without lines, an invoice
-- without a date) can only be fixed by a change in HubSpot, which the incremental read finds
-- by itself. So each open problem says where its cause lies:
--   'hubspot'  the HubSpot record itself or its line items: retried when HubSpot changes the
--              record, one of its lines, or deletes one of them (line_ids: the lines the
--              record had when it failed, so that a deleted line leads back to it);
--   'ledger'   anything else (a locked period, a SKU another item has, the ledger refusing a
--              row, a product or setting the record depends on): retried by id every run.
-- Entries from before this migration have no cause: they are retried every run, like
-- 'ledger', until a run records them again. Warnings (settled when logged) have none.
ALTER TABLE ledger.integration_errors
    ADD COLUMN cause text
        CONSTRAINT integration_errors_cause_check CHECK (cause IN ('hubspot', 'ledger')),
    ADD COLUMN line_ids text[];
