"""Extract: HubSpot pages → valid, typed records (no ledger, no mapping)."""
