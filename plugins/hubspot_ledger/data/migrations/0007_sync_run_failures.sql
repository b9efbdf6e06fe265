-- Why steps of a run failed, by step (issue 6): a step that fails and then succeeds on Airflow's
-- retry clears its entry, so the report judges the run by how each step ended, not by its
-- first try. `message` keeps the report's summary.
ALTER TABLE ledger.sync_runs
    ADD COLUMN failures jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(failures) = 'object');
