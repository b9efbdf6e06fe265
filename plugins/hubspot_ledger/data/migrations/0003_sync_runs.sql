-- Sync bookkeeping (issue 4).

-- Every task of one DAG run reports into the same sync_runs row: the DAG run id finds it.
CREATE UNIQUE INDEX sync_runs_dag_run ON ledger.sync_runs (integration_id, dag_run_id)
    WHERE dag_run_id IS NOT NULL;

-- Errors say which step raised them (products, companies, deals, invoices) for the report.
ALTER TABLE ledger.integration_errors ADD COLUMN step text;
