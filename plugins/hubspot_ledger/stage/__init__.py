"""Stage: what one step of a run has read, kept for the steps after it (ledger.sync_staging)."""
