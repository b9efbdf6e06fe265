-- What a run read (issue 5): everything since the cutoff ('full'), what changed since the last
-- full or incremental run ('incremental'), or the records HubSpot last modified inside one
-- backfill window ('window', [window_start, window_end)). Only full and incremental runs move
-- the point the next incremental run starts from: a window covers just its slice of history.
ALTER TABLE ledger.sync_runs
    ADD COLUMN mode text NOT NULL DEFAULT 'incremental'
        CHECK (mode IN ('full', 'incremental', 'window')),
    ADD COLUMN window_start timestamptz,
    ADD COLUMN window_end timestamptz,
    ADD CONSTRAINT sync_runs_window_iff_mode CHECK (
        (mode = 'window') = (window_start IS NOT NULL AND window_end IS NOT NULL)),
    ADD CONSTRAINT sync_runs_window_ordered CHECK (window_end > window_start);
