"""The sync layer: extract (HubSpotHook) → map (pure functions) → load (LedgerHook)."""
