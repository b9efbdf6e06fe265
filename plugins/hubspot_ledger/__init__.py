"""HubSpot → ledger sync: hooks, sync layers, operator CLI and the HubSpot sandbox."""
